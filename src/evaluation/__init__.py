"""Programme evaluation lab.

The package follows the flow of an evaluation, one module per stage::

    data/raw/<world>/  --validate-->  validated tables  --outcomes-->  one row per person
        --matching-->  matched design  --(effect, survival)-->  estimates  --report-->  reports/<programme>/

Modules
-------
config       programme configuration (``programmes/<id>.yaml``), paths
schemas      the canonical tables as pandera schemas (the data dictionary in code)
validate     load a world's tables and validate them, with errors that name file, column and rows
synth        the synthetic world with known true effects
cohort       participants and the comparison pool, covariates at the index date, attrition
outcomes     MoJ proven reoffending (binary, frequency, days to first), survival view, first-time entry
rates        rates and differences with confidence intervals (Wilson, Newcombe, over-dispersed counts)
matching     MatchIt-faithful propensity-score matching, balance, effects; IPW
sensitivity  Rosenbaum bounds and E-values
power        minimum detectable difference and the JDL "number needed"
survival     Kaplan-Meier, log-rank, Cox, RMST that agree with R survival
estimates    one call per programme: cohort -> outcomes -> matched design -> every published figure
wording      Justice Data Lab rounding, significance rule and plain-English findings
disclosure   primary and secondary suppression of published counts
area         interrupted time series and difference-in-differences for area pilots
delivery     delivery against targets, reach and referral funnels
vfm          value for money (unit costs of crime, benefit-cost ratios)
report       papermill / nbconvert / WeasyPrint build of programme reports and the portfolio
"""

__version__ = "0.1.0"
