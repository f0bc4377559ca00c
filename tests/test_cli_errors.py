"""Bad input to the job commands: one line naming the culprit, a non-zero exit, nothing written."""

import json
import shutil

import pytest

from tests.helpers import EXTRACTION_SPEC, run_genies


def assert_one_line_error(result, message: str, code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("arguments", "message", "code"),
    [
        (["--max-examples", "-1"], "--max-examples: '-1' is not a positive integer", 2),
        (["--max-examples", "0"], "--max-examples: '0' is not a positive integer", 2),
        (["--spec", "{templates: raw}"], "argument --spec: not JSON", 2),
        (["--spec", json.dumps({"dtype": "float32"})], "--spec lacks templates", 1),
        (
            ["--spec", json.dumps(EXTRACTION_SPEC | {"storage_dtype": "float8"})],
            "storage_dtype 'float8': expected one of float16, bfloat16, float32",
            1,
        ),
    ],
)
def test_bad_extraction_arguments(tiny_dir, tmp_path, arguments, message, code):
    out = tmp_path / "raw.safetensors"
    command = ["extract", "--model-dir", str(tiny_dir), "--split", "missing.parquet"]
    command += ["--spec", json.dumps(EXTRACTION_SPEC), "--out", str(out), *arguments]
    assert_one_line_error(run_genies(*command), message, code)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_shift_table(tmp_path):
    command = ["genies-table", "--tidy", str(tmp_path / "none.parquet"), "--config", "{}"]
    assert_one_line_error(run_genies(*command, cwd=tmp_path), "none.parquet: shift table not found")


def test_settings_without_what_materialising_needs(tmp_path):
    result = run_genies("materialise", "m", "--settings", "{}", "--out", str(tmp_path / "m"))
    assert_one_line_error(result, "--settings lacks loader, dtype")
    assert list(tmp_path.iterdir()) == []


def test_a_model_of_an_unsupported_family(tiny_dir, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=512)).save_pretrained(
        folder
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_dir / name).exists():
            shutil.copy(tiny_dir / name, folder / name)
    settings = {"loader": "pretrained", "path": str(folder), "dtype": "float32"}
    out = tmp_path / "models" / "gpt2"
    result = run_genies(
        "materialise", "gpt2", "--settings", json.dumps(settings), "--out", str(out)
    )
    assert_one_line_error(result, "GPT2LMHeadModel: not a supported decoder family")
    assert not out.exists()


def test_an_os_error_in_a_job_is_one_line_naming_the_file(tmp_path):
    """Here a directory where the output goes (the rename fails): the system's words, the file,
    and in a job's log (stderr not a console) the traceback before it."""
    import pandas as pd

    from genies.files.parquet import write_frame

    tidy = tmp_path / "m.parquet"
    row = {"model": "m", "intervention": "zero_shot", "source": "s", "target": "t"}
    row |= {"label": "extreme", "category": "skill", "genies_position": 0}
    write_frame(pd.DataFrame([row]), tidy)
    (tmp_path / "c.csv").write_text("model,first,second\n")
    (tmp_path / "claims.csv").mkdir()
    command = ["claims", "--tidy", str(tidy), "--contrasts", str(tmp_path / "c.csv")]
    command += ["--csv", str(tmp_path / "claims.csv"), "--md", str(tmp_path / "c.md")]
    result = run_genies(*command, "--title", "t", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("genies: error: ") and "claims.csv" in last, result.stderr
    assert "Is a directory" in last and "Traceback" in result.stderr  # the log keeps it
    assert not (tmp_path / "c.md").exists()
