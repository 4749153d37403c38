"""A user mistake or a bad file gets one sentence and exit 2 — never a traceback, never lost
work — on every command: outputs that cannot be written, directories given as files, damaged
or mistaken input files, bad seeds, bad CSV cells, --resume with nothing to resume, an empty
proxy listing; and the help and files around them (issue 11)."""

from __future__ import annotations

import operator
import os
import warnings
from pathlib import Path

import click
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from conftest import make_tiny_benchmark
from zcnas import files, pools
from zcnas.cli import app
from zcnas.errors import BenchmarkError, ZcnasError

ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ARCH_C = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=400)


def assert_one_sentence(result, *fragments):
    """Exit 2, one `error:` line on stderr naming `fragments`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception), result.exception  # SystemExit is no Exception
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def read_only(path, mode, **kwargs) -> bool:
    """os.access on a machine where no folder may be written (reading stays allowed)."""
    return not mode & os.W_OK


def tmp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny benchmark, a finished run of it (params, flops: fast), its report and a model."""
    folder = tmp_path_factory.mktemp("made")
    bench = make_tiny_benchmark(folder / "bench.h5", n_archs=8)
    run = folder / "run.h5"
    result = invoke("score", bench, "-p", "params,flops", "-b", "8", "-o", run, "-q")
    assert result.exit_code == 0, result.output
    model = folder / "model.npz"
    fitted = invoke("combine", run, "-m", "rank_average", "-k", "4", "-r", "1", "--resamples", "0", "-o", model, "-q")
    assert fitted.exit_code == 0, fitted.output
    return {"bench": bench, "run": run, "report": folder / "run.report.json", "model": model, "summary": folder / "model.json"}


# -- 1. an output location that cannot be written ----------------------------------------------
def test_check_writable_accepts_a_new_file_in_a_new_folder(tmp_path):
    assert files.check_writable(tmp_path / "a" / "b" / "run.h5", "--out") == tmp_path / "a" / "b" / "run.h5"


def test_check_writable_refuses_a_parent_that_is_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ZcnasError, match=r"Cannot write --out .*plain/deeper/run\.h5: .*plain is a file, not a folder\."):
        files.check_writable(tmp_path / "plain" / "deeper" / "run.h5", "--out")


def test_check_writable_refuses_a_folder_without_write_permission(tmp_path, monkeypatch):
    asked = []

    def access(path, mode):
        asked.append((Path(path), mode))
        return False

    monkeypatch.setattr(files.os, "access", access)
    with pytest.raises(ZcnasError, match=r"the folder .* is not writable; choose a location you can write to\."):
        files.check_writable(tmp_path / "new" / "run.h5", "--out")
    assert asked == [(tmp_path, os.W_OK | os.X_OK)]  # the nearest folder that exists


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway; the os.access test covers it")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ZcnasError, match="is not writable"):
            files.check_writable(folder / "run.h5", "--out")
    finally:
        folder.chmod(0o755)


def test_score_refuses_an_unwritable_out_before_any_setup(made, tmp_path, monkeypatch):
    import zcnas.run.runner as runner

    monkeypatch.setattr(runner, "run_job", lambda *a, **k: pytest.fail("the job started"))
    (tmp_path / "plain").write_text("x")
    assert_one_sentence(invoke("score", made["bench"], "-p", "params", "-o", tmp_path / "plain" / "run.h5", "-q"), "is a file, not a folder")
    monkeypatch.setattr(files.os, "access", read_only)
    assert_one_sentence(invoke("score", made["bench"], "-p", "params", "-o", tmp_path / "run.h5", "-q"), "is not writable")
    assert not list(tmp_path.glob("run*"))


def test_every_writing_command_refuses_an_unwritable_location(made, tmp_path, monkeypatch):
    csv_path, probe = csv_and_probe(tmp_path)
    run_copy = tmp_path / "copy" / "run.h5"
    run_copy.parent.mkdir()
    run_copy.write_bytes(made["run"].read_bytes())
    monkeypatch.setattr(files.os, "access", read_only)
    commands = {
        "combine": ["combine", made["run"], "-m", "rank_average", "-k", "4", "-r", "1", "-o", tmp_path / "m.npz", "-q"],
        "bench import": ["bench", "import", "csv", csv_path, "--dataset", "cifar10", "--probe", probe, "--out", tmp_path / "b.h5"],
        "report": ["report", run_copy, "-q"],
        "check --update": ["check", made["report"], "--baseline", tmp_path / "base.json", "--update"],
    }
    for name, arguments in commands.items():
        assert_one_sentence(invoke(*arguments), "is not writable")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["copy", "probe.npz", "run.h5", "tiny.csv"]


def test_a_permission_error_while_running_is_one_sentence(made, tmp_path, monkeypatch):
    import zcnas.report as report

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "run.report.json"))

    monkeypatch.setattr(report, "write_report_files", refuse)
    assert_one_sentence(invoke("score", made["bench"], "-p", "params", "-b", "8", "-o", tmp_path / "run.h5", "-q"), "permission denied on")


# -- 2. --out naming an existing directory ------------------------------------------------------
def test_score_out_that_is_a_directory_is_refused_with_every_flag(made, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for flags in ((), ("--overwrite",), ("--resume",)):
        line = assert_one_sentence(
            invoke("score", made["bench"], "-p", "params", "-o", folder, "-q", *flags), "results is a directory; name a file in it"
        )
        assert "--overwrite" not in line and "--resume" not in line
    assert tmp_files(tmp_path) == [] and list(folder.iterdir()) == []


def test_combine_and_bench_import_out_that_is_a_directory(made, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    assert_one_sentence(
        invoke("combine", made["run"], "-m", "rank_average", "-k", "4", "-r", "1", "-o", folder, "-q"), "is a directory"
    )
    csv_path, probe = csv_and_probe(tmp_path)
    assert_one_sentence(
        invoke("bench", "import", "csv", csv_path, "--dataset", "cifar10", "--probe", probe, "--out", folder, "--force"),
        "is a directory",
    )
    assert tmp_files(tmp_path) == [] and list(folder.iterdir()) == []


def test_the_report_or_summary_path_being_a_directory(made, tmp_path):
    run = tmp_path / "run.h5"
    run.write_bytes(made["run"].read_bytes())
    (tmp_path / "run.report.md").mkdir()
    assert_one_sentence(invoke("report", run, "-q"), "Cannot write the report file", "run.report.md: it is a directory")
    (tmp_path / "m.json").mkdir()
    assert_one_sentence(
        invoke("combine", run, "-m", "rank_average", "-k", "4", "-r", "1", "-o", tmp_path / "m.npz", "-q"),
        "Cannot write the JSON summary",
    )
    assert tmp_files(tmp_path) == []


def test_a_failed_checkpoint_or_model_save_leaves_no_temporary_file(made, tmp_path):
    from zcnas.combine import load_model
    from zcnas.run.store import RunStore

    store = RunStore.open(made["run"])
    store.path = tmp_path / "taken"
    store.path.mkdir()
    with pytest.raises(IsADirectoryError):
        store.checkpoint()
    model = load_model(made["model"])
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "taken")
    assert tmp_files(tmp_path) == []


# -- 3. a truncated combine model ---------------------------------------------------------------
def test_a_truncated_model_is_one_sentence(made, tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(made["model"].read_bytes()[:300])
    assert_one_sentence(
        invoke("score", made["bench"], "-p", f"combined:{cut}", "-o", tmp_path / "r.h5", "-q"), "cut.npz is a truncated or damaged combine model"
    )
    assert not (tmp_path / "r.h5").exists()


# -- 4. seeds and --checkpoint-seconds ----------------------------------------------------------
def seed_commands(made, tmp_path) -> dict[str, list]:
    csv_path, probe = csv_and_probe(tmp_path)
    return {
        "--seed": ["score", made["bench"], "-p", "params", "-o", tmp_path / "r.h5", "-q", "--seed"],
        "--bootstrap-seed": ["report", made["run"], "-q", "--bootstrap-seed"],
        "compare --bootstrap-seed": ["compare", made["run"], made["run"], "--bootstrap-seed"],
        "combine --seed": ["combine", made["run"], "-m", "rank_average", "-k", "4", "-o", tmp_path / "m.npz", "-q", "--seed"],
        "combine --param seed": ["combine", made["run"], "-m", "parzc", "-k", "4", "-o", tmp_path / "m.npz", "-q", "-P"],
        "bench build --seed": ["bench", "build", "--out", tmp_path / "b.h5", "--seed"],
        "--probe-seed": ["bench", "import", "csv", csv_path, "--dataset", "cifar10", "--probe", probe, "--out", tmp_path / "b.h5", "--probe-seed"],
    }


@pytest.mark.parametrize("value", ["-1", str(2**32)])
def test_a_seed_out_of_range_is_refused_by_every_command(made, tmp_path, value):
    for arguments in seed_commands(made, tmp_path).values():
        value_argument = f"seed={value}" if arguments[-1] == "-P" else value
        assert_one_sentence(invoke(*arguments, value_argument), f"must be a whole number from 0 to 4294967295; got {value}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.npz", "tiny.csv"]


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan"])
def test_checkpoint_seconds_below_zero_is_refused(made, tmp_path, value):
    assert_one_sentence(
        invoke("score", made["bench"], "-p", "params", "-o", tmp_path / "r.h5", "-q", "--checkpoint-seconds", value),
        "--checkpoint-seconds must be 0 (after every result) or more",
    )


# -- 5. bench import csv: a non-numeric cell, an empty column ----------------------------------
def csv_and_probe(tmp_path: Path, rows: list[str] | None = None, header: str = "index,arch_str,test_acc,valid_acc,comment"):
    rows = rows or [f"0,{ARCH_A},93.5,90.1,good", f"1,{ARCH_B},85.9,,meh", f"2,{ARCH_C},10.0,9.9,bad"]
    csv_path = tmp_path / "tiny.csv"
    csv_path.write_text("\n".join([header, *rows]) + "\n")
    probe = tmp_path / "probe.npz"
    rng = np.random.default_rng(1)
    np.savez(probe, images=rng.integers(0, 256, size=(30, 8, 8, 3), dtype=np.uint8), labels=np.arange(30) % 3)
    return csv_path, probe


def test_csv_one_bad_cell_is_refused_with_its_line_and_column(tmp_path):
    csv_path, probe = csv_and_probe(tmp_path, [f"0,{ARCH_A},93.5,90.1,good", f"1,{ARCH_B},n/a,88.0,meh", f"2,{ARCH_C},10.0,9.9,bad"])
    out = tmp_path / "b.h5"
    line = assert_one_sentence(
        invoke("bench", "import", "csv", csv_path, "--dataset", "cifar10", "--probe", probe, "--out", out),
        "line 3: target column 'test_acc' holds 'n/a', which is not a number",
    )
    assert "--exclude test_acc" in line
    assert not out.exists()


def test_csv_column_without_any_value_is_refused(tmp_path):
    from zcnas.bench.importers import import_csv
    from zcnas.bench.probe import load_probe_npz

    rows = [f"0,{ARCH_A},93.5,,nan,", f"1,{ARCH_B},85.9,,,", f"2,{ARCH_C},10.0,,NaN,"]
    csv_path, probe = csv_and_probe(tmp_path, rows, header="index,arch_str,test_acc,valid_acc,train_acc,")
    probe_set = load_probe_npz(probe)
    with pytest.raises(BenchmarkError, match=r"column 'valid_acc' has no value on any line .* --exclude valid_acc"):
        import_csv(csv_path, tmp_path / "b.h5", probe=probe_set, dataset="cifar10")
    with pytest.raises(BenchmarkError, match=r"column 'train_acc' has no value"):
        import_csv(csv_path, tmp_path / "b.h5", probe=probe_set, dataset="cifar10", exclude_columns=["valid_acc"])
    # Left out on purpose: imported; the unnamed empty column of trailing commas is no column.
    b = import_csv(csv_path, tmp_path / "b.h5", probe=probe_set, dataset="cifar10", exclude_columns=["valid_acc", "train_acc"])
    assert list(b.targets) == ["test_acc"]


def test_csv_text_columns_are_still_not_targets(tmp_path):
    from zcnas.bench.importers import import_csv
    from zcnas.bench.probe import load_probe_npz

    csv_path, probe = csv_and_probe(tmp_path)
    b = import_csv(csv_path, tmp_path / "b.h5", probe=load_probe_npz(probe), dataset="cifar10")
    assert list(b.targets) == ["test_acc", "valid_acc"] and np.isnan(b.targets["valid_acc"][1])


# -- 6. --resume with nothing to resume; a file of another kind ---------------------------------
def test_resume_without_a_run_warns_then_starts_one(made, tmp_path):
    out = tmp_path / "r.h5"
    result = invoke("score", made["bench"], "-p", "params", "-b", "8", "-o", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert f"warning: --resume: there is no run at {out} yet, so a new one starts there." in result.stderr
    assert out.exists()
    again = invoke("score", made["bench"], "-p", "params", "-b", "8", "-o", out, "-q", "--resume")
    assert again.exit_code == 0 and "warning" not in again.stderr
    assert "with no run there yet: a warning, then a new run" in " ".join(invoke("score", "--help").output.split())


def test_bench_build_resume_without_a_build_warns(tmp_path, monkeypatch):
    import zcnas.cli_bench as cli_bench

    def stop(*args, **kwargs):
        raise ZcnasError("stopped here")

    monkeypatch.setattr(cli_bench, "_build_with_progress", stop)
    result = invoke("bench", "build", "--out", tmp_path / "b.h5", "--resume")
    assert "warning: --resume: there is no build of" in result.stderr and "stopped here" in result.stderr


def test_a_file_of_another_kind_is_named_with_the_command_that_takes_it(made, tmp_path):
    out = tmp_path / "r.h5"
    score = ("score", "-p", "params", "-o", out, "-q")
    cases = [
        (("score", made["run"], *score[1:]), "run.h5 is a zcnas run file (written by `zcnas score`), not a benchmark; `zcnas report RUN`"),
        (("score", made["report"], *score[1:]), "run.report.json is a zcnas report (JSON), not a benchmark; `zcnas check REPORT"),
        (("score", made["model"], *score[1:]), "model.npz is a zcnas combine model, not a benchmark; `zcnas score BENCH --proxies combined:MODEL`"),
        (("bench", "info", made["run"]), "is a zcnas run file"),
        (("report", made["bench"]), "bench.h5 is a zcnas benchmark, not a zcnas run file; `zcnas score BENCH`"),
        (("combine", made["model"]), "is a zcnas combine model, not a zcnas run file"),
        (("check", made["run"], "--baseline", tmp_path / "b.json"), "is a zcnas run file (written by `zcnas score`), not a report"),
        (("score", made["bench"], "-p", f"combined:{made['summary']}", *score[3:]), "model.json is the JSON summary of a zcnas combine, not a combine model"),
    ]
    for arguments, fragment in cases:
        assert_one_sentence(invoke(*arguments), fragment)


def test_identify_kinds_match_what_the_writers_store():
    from zcnas.combine.base import MODEL_KIND
    from zcnas.combine.evaluate import SUMMARY_KIND
    from zcnas.report.build import REPORT_KIND
    from zcnas.report.check import BASELINE_KIND

    assert set(files.KINDS) == {"zcnas-run", REPORT_KIND, BASELINE_KIND, MODEL_KIND, SUMMARY_KIND}


def test_identify_leaves_other_files_alone(tmp_path):
    for name, content in (("a.txt", b"hello"), ("b.json", b"[1, 2]"), ("c.npz", b"PK\x03\x04 cut"), ("d.h5", b"\x89HDF\r\n\x1a\n")):
        (tmp_path / name).write_bytes(content)
        assert files.identify(tmp_path / name) is None
    assert files.identify(tmp_path / "missing") is None


# -- 13. zcnas proxies ----------------------------------------------------------------------------
def test_proxies_pattern_matching_nothing_is_refused():
    assert_one_sentence(invoke("proxies", "nomatch*"), "No proxy matches 'nomatch*'")


def test_proxies_title_is_singular_for_one():
    result = invoke("proxies", "synflow")
    assert result.exit_code == 0 and "1 proxy" in result.output and "1 proxies" not in result.output


# -- 15. help ------------------------------------------------------------------------------------
def every_command(group: click.Command, path=()) -> list[tuple[str, ...]]:
    commands = [path]
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            commands += every_command(command, (*path, name))
    return commands


def test_combine_help_lists_every_registered_method():
    from zcnas.combine import METHODS

    text = " ".join(invoke("combine", "--help").output.split())
    for name in METHODS:
        assert name in text, name
    assert "robot (needs pip install 'zcnas[robot]')" in text


def test_check_help_example_names_a_baseline_that_exists():
    text = invoke("check", "--help").output
    assert "--baseline zcnas/data/default.baseline.json" in text
    assert (Path(__file__).resolve().parents[1] / "zcnas" / "data" / "default.baseline.json").exists()


def test_no_help_shows_a_type_next_to_a_flag():
    for command in every_command(typer.main.get_command(app)):
        result = invoke(*command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "<bool>" not in result.output and "BOOLEAN" not in result.output, command


# -- 20. files end with a newline; an early stop does not warn ---------------------------------
def test_report_files_end_with_a_newline(made):
    for suffix in (".report.json", ".report.md", ".report.html"):
        text = made["run"].with_suffix(suffix).read_text()
        assert text.endswith("\n") and not text.endswith("\n\n"), suffix


def test_stopping_worker_results_early_does_not_warn():
    results = pools.execute(operator.add, list(range(40)), 0, workers=2)
    next(results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results.close()
    assert [str(w.message) for w in caught] == []
