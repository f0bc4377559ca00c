# Reproduction of the paper: every published table recomputed from the published evaluations.


rule published_evaluations:
    input:
        archive=f"{RAW}/published/evaluations.tar.xz",
        code=code("paper-index"),
    output:
        "results/paper/published_evaluations.parquet",
    log:
        "logs/paper/published_evaluations.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        raw_dir=lambda wildcards, input: Path(input.archive).parents[1],
    shell:
        "genies paper-index --raw-dir {params.raw_dir} --out {output} 2> {log}"


rule paper_tables:
    input:
        index=rules.published_evaluations.output,
        splits=[split_path(target, "test") for target in PAPER_TARGETS],
        ttc=TTC_FILES,
        code=code("paper-tables"),
    output:
        tables=directory("results/paper/generalization_metrics"),
        tidy="results/paper/shift_metrics.parquet",
        notes="results/paper/notes.csv",
        ttc="results/paper/target_tuned_capability.csv",
    log:
        "logs/paper/tables.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        # data/raw, from <raw>/published/target_tuned_capability/<model>/<target>.json
        raw_dir=lambda wildcards, input: Path(input.ttc[0]).parents[3],
        splits_dir=lambda wildcards, input: Path(input.splits[0]).parents[1],
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
    shell:
        "genies paper-tables --index {input.index} --raw-dir {params.raw_dir} "
        "--splits-dir {params.splits_dir} --out-dir {output.tables} --tidy {output.tidy} "
        "--notes {output.notes} --ttc {output.ttc} --seed {params.seed} "
        "--resamples {params.resamples} --level {params.level} 2> {log}"


rule paper_summary:
    input:
        tidy=rules.paper_tables.output.tidy,
        code=code("paper-summary"),
    output:
        csv="results/paper/genies_summary.csv",
        md="results/paper/genies_summary.md",
        json="results/paper/genies_summary.json",
    log:
        "logs/paper/summary.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
    shell:
        "genies paper-summary --tidy {input.tidy} --csv {output.csv} --md {output.md} "
        "--json {output.json} --seed {params.seed} --resamples {params.resamples} "
        "--level {params.level} 2> {log}"


rule paper_figures:
    input:
        tidy=rules.paper_tables.output.tidy,
        summary=rules.paper_summary.output.csv,
        index=rules.published_evaluations.output[0],
        code=code("paper-figures"),
    output:
        **PAPER_FIGURES,
        correlations="results/paper/correlations.csv",
    log:
        "logs/paper/figures.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        out_dir=lambda wildcards, output: Path(output.genies_de).parent,
        level=CFG.bootstrap["level"],
    shell:
        "genies paper-figures --tidy {input.tidy} --summary {input.summary} "
        "--index {input.index} --out-dir {params.out_dir} --level {params.level} "
        "--correlations {output.correlations} 2> {log}"


rule paper_mixing:
    input:
        index=rules.published_evaluations.output,
        splits=[split_path(target, "test") for target in PAPER_TARGETS],
        ttc=TTC_FILES,
        code=code("paper-mixing"),
    output:
        csv="results/paper/mixing.csv",
        md="results/paper/mixing.md",
        figure=paper_figure("mixing", "mixing"),
    log:
        "logs/paper/mixing.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        # data/raw, from <raw>/published/target_tuned_capability/<model>/<target>.json
        raw_dir=lambda wildcards, input: Path(input.ttc[0]).parents[3],
        splits_dir=lambda wildcards, input: Path(input.splits[0]).parents[1],
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
    shell:
        "genies paper-mixing --index {input.index} --raw-dir {params.raw_dir} "
        "--splits-dir {params.splits_dir} --csv {output.csv} --md {output.md} "
        "--figure {output.figure} --seed {params.seed} --resamples {params.resamples} "
        "--level {params.level} 2> {log}"


# Paired contrasts between the published interventions (genies.evaluation.contrasts).
rule paper_contrasts:
    input:
        index=rules.published_evaluations.output,
        tidy=rules.paper_tables.output.tidy,
        splits=rules.paper_tables.input.splits,
        ttc=TTC_FILES,
        code=code("paper-contrasts"),
    output:
        csv="results/paper/contrasts.csv",
        md="results/paper/contrasts.md",
        shifts="results/paper/contrast_shifts.csv",
        figure=paper_figure("contrasts", "contrasts"),
    log:
        "logs/paper/contrasts.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        raw_dir=rules.paper_tables.params.raw_dir,
        splits_dir=rules.paper_tables.params.splits_dir,
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
    shell:
        "genies paper-contrasts --index {input.index} --raw-dir {params.raw_dir} "
        "--splits-dir {params.splits_dir} --tidy {input.tidy} --csv {output.csv} "
        "--md {output.md} --shifts {output.shifts} --figure {output.figure} "
        "--seed {params.seed} --resamples {params.resamples} --level {params.level} 2> {log}"


rule paper_claims:
    input:
        tidy=rules.paper_tables.output.tidy,
        contrasts=rules.paper_contrasts.output.csv,
        code=code("claims"),
    output:
        csv="results/paper/claims.csv",
        md="results/paper/claims.md",
    log:
        "logs/paper/claims.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
        title="Claims of the paper, re-tested on its published evaluations",
    shell:
        "genies claims --tidy {input.tidy} --contrasts {input.contrasts} --csv {output.csv} "
        "--md {output.md} --title '{params.title}' "
        "--seed {params.seed} --resamples {params.resamples} --level {params.level} 2> {log}"


rule paper:
    input:
        rules.paper_tables.output,
        rules.paper_summary.output,
        rules.paper_contrasts.output,
        rules.paper_claims.output,
        rules.paper_figures.output,
        rules.paper_mixing.output,
