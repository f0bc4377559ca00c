from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


RUN_STARTED = time.time()


onerror:
    # each failed job's own line last, after Snakemake's report (genies.job_errors)
    if lines := job_error_lines(Path("logs"), RUN_STARTED):
        atexit.register(print, *lines, sep="\n", file=sys.stderr)


wildcard_constraints:
    distribution="|".join(vendored_distributions(RAW)),
    split="|".join(SPLITS),
    model="|".join(CFG.models),
    template="|".join(TEMPLATES),
    intervention="|".join(CFG.interventions),
    source="|".join(
        [
            *vendored_distributions(RAW),
            UNTRAINED_SOURCE,
            *(re.escape(s) for _, s in MIXED),
        ]
    ),


include: "rules/data.smk"
include: "rules/paper.smk"
include: "rules/models.smk"
include: "rules/interventions.smk"
include: "rules/genies.smk"


# A missing intermediate of a built run (a deleted state, evaluation or sidecar) is rebuilt by
# the plain command (genies.rebuild).
if workflow.is_main_process:
    rebuild_missing(BUILT_CHAINS)


rule all:
    default_target: True
    input:
        rules.splits.input,
        rules.data_audit.output,
        rules.paper.input,
        rules.activations.input,
        rules.genies.input,
