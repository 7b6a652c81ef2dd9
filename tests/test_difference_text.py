"""Headline differences that round to zero print as 0 with no sign (MACE p4 printed "+less than 0.00001" and
"+0.02 days")."""
from __future__ import annotations

import math

from evaluation.report.content import difference_text


def test_tiny_differences_print_as_zero_without_sign():
    assert difference_text(0.000004, 2) == "0.00"
    assert difference_text(-0.000004, 2) == "0.00"
    assert difference_text(0.02) == "0" and difference_text(0.02) + " days" == "0 days"
    assert difference_text(-0.4) == "0"


def test_real_differences_keep_sign_and_fixed_decimals():
    assert difference_text(0.4, 2) == "+0.40"
    assert difference_text(-3.4) == "−3"
    assert difference_text(0.005, 2) == "+0.01"  # half up
    assert difference_text(math.nan) == "–"
