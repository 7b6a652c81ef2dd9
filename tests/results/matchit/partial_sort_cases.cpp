// Reference permutations of libstdc++ std::partial_sort (g++ 12, as used to build MatchIt 4.7.2 here) on
// keys with many ties, as MatchIt's find_control_vec calls it. Build and run:
//   g++ -O2 -std=c++14 partial_sort_cases.cpp -o /tmp/ps && /tmp/ps > partial_sort_cases.json
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>
int main() {
  std::mt19937 gen(20240101);
  std::printf("[\n");
  for (int c = 0; c < 500; c++) {
    int n = 2 + gen() % 9;
    int k = 1 + gen() % (n - 1);
    std::vector<double> key(n);
    for (auto& x : key) x = (double)(gen() % 3);
    std::vector<int> ind(n);
    std::iota(ind.begin(), ind.end(), 0);
    std::partial_sort(ind.begin(), ind.begin() + k, ind.end(), [&key](int a, int b) { return key[a] < key[b]; });
    std::printf("{\"k\": %d, \"key\": [", k);
    for (int i = 0; i < n; i++) std::printf(i ? ", %g" : "%g", key[i]);
    std::printf("], \"ind\": [");
    for (int i = 0; i < n; i++) std::printf(i ? ", %d" : "%d", ind[i]);
    std::printf("]}%s\n", c < 499 ? "," : "");
  }
  std::printf("]\n");
}
