from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    distribution="|".join(vendored_distributions(RAW)),
    split="|".join(SPLITS),
    model="|".join(CFG.models),
    template="|".join(TEMPLATES),


include: "rules/data.smk"
include: "rules/paper.smk"
include: "rules/models.smk"


rule all:
    default_target: True
    input:
        rules.splits.input,
        rules.data_audit.output,
        rules.paper.input,
        rules.activations.input,
