"""`zcnas bench import naslib-zc`: NAS-Bench-Suite-Zero tables as benchmarks plus reference runs.

Real tables come from ../shared/data (tests skip without them); NB101 and DARTS tests also skip
until their spaces exist. Malformed files are written in tmp_path.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_file
from zcnas.bench.format import open_benchmark
from zcnas.bench.naslib_zc import NASLIB_FAILURE, import_naslib_zc, read_suite_zero
from zcnas.cli import app
from zcnas.errors import BenchmarkError
from zcnas.run.store import FAILED, OK, RunStore

runner = CliRunner()

NB201_CSV = "nb201_zc_naslib_subset725.csv"
MICRO = "naslib_zc_transbench101_micro_e5a821c.json"
MACRO = "naslib_zc_transbench101_macro_e5a821c.json"
NB101 = "naslib_zc_nasbench101_22280f7.json"
NB301 = "naslib_zc_nasbench301_6639fd1.json"
SUITE_ZERO_13 = ["synflow", "snip", "grad_norm", "grasp", "fisher", "jacob_cov", "nwot", "epe_nas", "l2_norm", "plain", "flops", "params"]
TRANSBENCH_PROXIES = ["flops", "params", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas", "jacob_cov", "snip"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 3, text  # one sentence (rich may wrap it)
    for fragment in fragments:
        assert fragment in " ".join(text.split()), text


def column(store: RunStore, proxy: str) -> dict[str, float]:
    return {e: s for e, s, ok in zip(store.encodings, store.scores[proxy], store.status[proxy] == OK) if ok}


# ------------------------------------------------------------------ NB201 CSV (file 7)


@pytest.fixture(scope="module")
def nb201_cifar10(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nb201")
    [result] = import_naslib_zc(shared_file(NB201_CSV), folder / "c10.h5", task="cifar10")
    return result


def test_nb201_csv_counts_index_and_failures(nb201_cifar10):
    result = nb201_cifar10
    bench = result.benchmark
    assert bench.search_space == "nb201" and bench.dataset == "cifar10" and bench.num_classes == 10
    assert bench.n_archs == 725 and result.duplicates == 0 and bench.probe_images is None
    assert list(bench.targets) == ["val_accuracy"]
    assert result.proxies == SUITE_ZERO_13  # the CSV's column order, jacov renamed
    # file 7's README: 1 missing synflow on cifar10; architecture 568 (a cell without a path of
    # parametric ops) has -1e8 for jacov and epe_nas and -inf for nwot.
    assert {p: n for p, n in result.failures.items() if n} == {"synflow": 1, "jacob_cov": 1, "nwot": 1, "epe_nas": 1}
    store = RunStore.open(result.run_path)
    assert store.spec.reference["source_file"] == NB201_CSV and store.spec.reference["task"] == "cifar10"
    assert "not computed by zcnas" in store.spec.reference["origin"]
    assert store.spec.reference["proxies"]["jacob_cov"]["naslib_name"] == "jacov"
    assert store.spec.proxies == tuple(SUITE_ZERO_13) and len(store) == 725
    row = int(np.flatnonzero(store.index == 568)[0])
    assert store.status["epe_nas"][row] == FAILED and "-1e8" in store.errors["epe_nas"][row]
    assert store.status["nwot"][row] == FAILED and "-inf" in store.errors["nwot"][row]
    missing = int(np.flatnonzero(store.status["synflow"] == FAILED)[0])
    assert "holds no score" in store.errors["synflow"][missing] and math.isnan(store.scores["synflow"][missing])


def test_nb201_csv_values_match_the_raw_rows(nb201_cifar10):
    import csv

    rows = [r for r in csv.DictReader(open(shared_file(NB201_CSV))) if r["dataset"] == "cifar10"]
    raw = rows[0]  # naslib_idx 534, the first cifar10 row
    store = RunStore.open(nb201_cifar10.run_path)
    bench = nb201_cifar10.benchmark
    row = bench.encodings.index(raw["arch_str"])
    assert int(bench.index[row]) == int(raw["naslib_idx"]) == 534
    assert bench.targets["val_accuracy"][row] == pytest.approx(float(raw["val_accuracy"]))
    assert store.scores["jacob_cov"][row] == pytest.approx(float(raw["jacov"]))
    assert store.scores["synflow"][row] == pytest.approx(float(raw["synflow"]))  # NASLib's ln(synflow), kept
    # zcnas's plain is the negation of NASLib's: the reference column holds -plain.
    assert store.scores["plain"][row] == pytest.approx(-float(raw["plain"]))
    assert store.spec.reference["proxies"]["plain"]["sign"] == "negated"


def test_nb201_imagenet_has_724_rows(tmp_path):
    [result] = import_naslib_zc(shared_file(NB201_CSV), tmp_path / "in16.h5", task="imagenet16-120")
    assert result.task == "ImageNet16-120" and result.benchmark.n_archs == 724 and result.benchmark.num_classes == 120


def test_report_on_the_reference_run_gives_suite_zeros_correlations(nb201_cifar10):
    result = invoke("report", nb201_cifar10.run_path, "--bootstrap", "0", "--no-html", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads(nb201_cifar10.run_path.with_name("c10.suitezero.report.json").read_text())
    spearman = {p["proxy"]: p["targets"]["val_accuracy"]["spearman"]["value"] for p in report["proxies"]}
    # Recomputed in ../shared/data/README.md (file 7, cifar10), there with NASLib's sign of plain.
    published = {"synflow": 0.736, "snip": 0.608, "fisher": 0.509, "flops": 0.711, "params": 0.738, "nwot": 0.787}
    for proxy, value in published.items():
        assert spearman[proxy] == pytest.approx(value, abs=0.002), proxy
    assert spearman["plain"] == pytest.approx(+0.257, abs=0.002)  # README: -0.257 before zcnas's negation
    failed = {p["proxy"]: p["failed"] for p in report["proxies"]}
    assert failed["synflow"] == 1 and failed["snip"] == 0


def test_combine_works_on_the_reference_run(nb201_cifar10, tmp_path):
    out = tmp_path / "ra.npz"
    result = invoke(
        "combine", nb201_cifar10.run_path, "--method", "rank_average", "--repeats", "2",
        "--resamples", "0", "--out", out, "--quiet",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["usable"] >= 700
    assert summary["summary"]["method"]["kendall"]["mean"] > 0.3


def test_score_refuses_to_resume_a_reference_run(tmp_path):
    data = shared_file(NB201_CSV)
    probe = shared_file("cifar10_kaggle_train200_png.npz")
    result = invoke(
        "bench", "import", "naslib-zc", data, "--task", "cifar10", "--probe", probe, "--out", tmp_path / "b.h5"
    )
    assert result.exit_code == 0, result.output
    assert open_benchmark(tmp_path / "b.h5").probe_images.shape == (200, 32, 32, 3)
    again = invoke("score", tmp_path / "b.h5", "--resume", "--out", tmp_path / "b.suitezero.h5", "-p", "params", "-q")
    assert_user_error(again, "is a reference run", "cannot be resumed")


def test_a_file_with_several_datasets_needs_a_task(tmp_path):
    result = invoke("bench", "import", "naslib-zc", shared_file(NB201_CSV), "--out", tmp_path / "x.h5")
    assert_user_error(result, "choose one with --task: cifar10, cifar100, ImageNet16-120 (or --task all)")
    result = invoke("bench", "import", "naslib-zc", shared_file(NB201_CSV), "--task", "svhn", "--out", tmp_path / "x.h5")
    assert_user_error(result, "has no task 'svhn'")
    assert not (tmp_path / "x.h5").exists()


def test_existing_outputs_are_kept_without_force(tmp_path):
    args = ("bench", "import", "naslib-zc", shared_file(NB201_CSV), "--task", "cifar100", "--out", tmp_path / "c.h5")
    assert invoke(*args).exit_code == 0
    assert_user_error(invoke(*args), "already exists", "--force")
    assert invoke(*args, "--force").exit_code == 0


# ------------------------------------------------------------------ TransNAS-Bench-101 (file 10)


def test_transbench_micro_task_all_writes_a_benchmark_and_run_per_task(tmp_path):
    result = invoke("bench", "import", "naslib-zc", shared_file(MICRO), "--task", "all", "--out", tmp_path / "micro")
    assert result.exit_code == 0, result.output
    tasks = ["class_scene", "class_object", "autoencoder", "normal", "jigsaw", "room_layout", "segmentsemantic"]
    for task in tasks:
        bench = open_benchmark(tmp_path / "micro" / f"{task}.h5")
        assert bench.search_space == "transbench101_micro" and bench.dataset == task and bench.n_archs == 711
        assert bench.probe_images is None
        store = RunStore.open(tmp_path / "micro" / f"{task}.suitezero.h5")
        assert store.spec.proxies == tuple(TRANSBENCH_PROXIES)  # no synflow in the TransNAS tables
    jigsaw = RunStore.open(tmp_path / "micro" / "jigsaw.suitezero.h5")
    assert int((jigsaw.status["epe_nas"] == FAILED).sum()) == 325
    assert int((jigsaw.status["jacob_cov"] == FAILED).sum()) == 20
    scene = RunStore.open(tmp_path / "micro" / "class_scene.suitezero.h5")
    assert bool((scene.status["epe_nas"] == FAILED).all())  # -1e8 for every architecture


def test_transbench_values_and_index_match_the_raw_json(tmp_path):
    path = shared_file(MACRO)
    raw = json.loads(path.read_text())["autoencoder"]
    [result] = import_naslib_zc(path, tmp_path / "ae.h5", task="autoencoder")
    assert result.benchmark.search_space == "transbench101_macro" and result.benchmark.n_archs == len(raw) == 725
    store = RunStore.open(result.run_path)
    key = "(1, 2, 4, 2, 0, 0)"
    record = raw[key]
    row = store.encodings.index(key)
    assert int(store.index[row]) == int(record["idx"])
    assert store.targets["val_accuracy"][row] == pytest.approx(record["val_accuracy"])
    assert store.scores["snip"][row] == pytest.approx(record["snip"]["score"])
    assert store.scores["jacob_cov"][row] == pytest.approx(record["jacov"]["score"])
    assert store.scores["plain"][row] == pytest.approx(-record["plain"]["score"])
    assert store.seconds["snip"][row] == pytest.approx(record["snip"]["time"])  # NASLib's measured time
    assert record["epe_nas"]["score"] == NASLIB_FAILURE and store.status["epe_nas"][row] == FAILED


def test_transbench_micro_or_macro_from_the_keys_when_the_name_does_not_say(tmp_path):
    for source, space in ((MICRO, "transbench101_micro"), (MACRO, "transbench101_macro")):
        data = json.loads(shared_file(source).read_text())
        small = {task: dict(list(archs.items())[:30]) for task, archs in list(data.items())[:2]}
        neutral = tmp_path / f"table_{space}.json".replace("micro", "m1").replace("macro", "m2")
        neutral.write_text(json.dumps(small))
        assert read_suite_zero(neutral).space == space


def test_table_only_score_refuses_in_one_sentence(tmp_path):
    [result] = import_naslib_zc(shared_file(MICRO), tmp_path / "scene.h5", task="class_scene")
    refused = invoke("score", result.benchmark.path, "-p", "params", "--out", tmp_path / "r.h5", "-q")
    assert_user_error(refused, "table-only space transbench101_micro", "cannot score")
    assert not (tmp_path / "r.h5").exists()
    combined = invoke("combine", result.run_path, "--method", "ridge", "--repeats", "1", "--resamples", "0", "--quiet")
    assert combined.exit_code == 0, combined.output


def test_table_only_space_takes_no_probe(tmp_path):
    result = invoke(
        "bench", "import", "naslib-zc", shared_file(MICRO), "--task", "jigsaw",
        "--probe", shared_file("cifar10_foolbox_samples20_png.npz"), "--out", tmp_path / "j.h5",
    )
    assert_user_error(result, "table-only", "takes no --probe")


# ------------------------------------------------------------------ NB101 and NB301 (files 8, 9)


def test_nb101_table(tmp_path):
    pytest.importorskip("zcnas.spaces.nb101")
    path = shared_file(NB101)
    [result] = import_naslib_zc(path, tmp_path / "nb101.h5")
    raw = json.loads(path.read_text())["nasbench101"]["cifar10"]
    assert result.benchmark.search_space == "nb101" and result.task == "cifar10"
    assert result.n_rows == len(raw) == 500
    assert result.benchmark.n_archs + result.duplicates == 500  # NASLib keys of one cell are merged
    assert "nwot" not in result.proxies and len(result.proxies) == 11
    store = RunStore.open(result.run_path)
    key, record = next(iter(raw.items()))
    row = store.encodings.index(result.benchmark.encodings[0])
    assert store.scores["grasp"][row] == pytest.approx(record["grasp"])
    assert store.targets["val_accuracy"][row] == pytest.approx(record["val_accuracy"])

    # Suite-Zero scored 46 networks under two or more keys: its own retest, from the raw JSON.
    from scipy import stats

    from zcnas.spaces import get_space

    space, groups = get_space("nb101"), {}
    for key, values in raw.items():
        groups.setdefault(space.canonical(key), []).append(values)
    pairs = [g[:2] for g in groups.values() if len(g) > 1]
    own = store.spec.reference["self_agreement"]
    assert own["networks"] == len(pairs) == 46
    for proxy, naslib in (("epe_nas", "epe_nas"), ("jacob_cov", "jacov"), ("snip", "snip")):
        expected = stats.spearmanr([p[0][naslib] for p in pairs], [p[1][naslib] for p in pairs])[0]
        assert own["proxies"][proxy]["spearman"]["value"] == pytest.approx(expected)
    assert own["proxies"]["epe_nas"]["spearman"]["value"] < 0.2 < own["proxies"]["jacob_cov"]["spearman"]["value"] < 0.9


def test_nb301_table(tmp_path):
    pytest.importorskip("zcnas.spaces.darts")
    path = shared_file(NB301)
    [result] = import_naslib_zc(path, tmp_path / "nb301.h5")
    assert result.benchmark.search_space == "darts" and result.benchmark.n_archs == 725
    assert result.proxies == ["flops", "params", "synflow", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas", "jacob_cov", "snip"]
    assert not any(result.failures.values())
    assert "surrogate" in result.benchmark.target_attrs["val_accuracy"]["description"]


# ------------------------------------------------------------------ malformed files (no shared data)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"class_scene": ', "is not valid JSON"),
        ("[1, 2, 3]", "its top level is a list"),
        ('{"cifar10": [1, 2]}', "task 'cifar10' holds a list"),
        ('{"cifar10": {"(0, 1, 2, 3, 4, 0)": {"snip": 1.0}}}', "has no 'val_accuracy'"),
        ('{"cifar10": {"(0, 1, 2, 3, 4, 0)": {"snip": "high", "val_accuracy": 90}}}', "holds 'high', not a number"),
        ('{"cifar10": {"(0, 1, 9, 3, 4, 0)": {"snip": 1.0, "val_accuracy": 90}}}', "is not an architecture of the nb201 space"),
        ('{"svhn": {"abc": {"val_accuracy": 90}}}', "match none of NB101, NB201, NB301 or TransNAS-Bench-101"),
    ],
)
def test_malformed_json_is_refused_in_one_sentence(tmp_path, content, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(BenchmarkError, match="bad.json"):
        read_suite_zero(bad)
    assert_user_error(invoke("bench", "import", "naslib-zc", bad, "--out", tmp_path / "o.h5"), fragment)
    assert not (tmp_path / "o.h5").exists()


def test_a_small_nb201_json_table_imports(tmp_path):
    """The JSON form of NB201 (NASLib op tuples as keys), as Suite-Zero's zc_nasbench201.json."""
    table = {
        "cifar10": {
            "(0, 2, 3, 2, 3, 1)": {"idx": "7", "arch": "x", "snip": {"score": 3.0, "time": 0.5}, "plain": {"score": 0.2, "time": 0.1}, "val_accuracy": 86.0},
            "(4, 0, 4, 1, 2, 0)": {"idx": "9", "arch": "y", "snip": {"score": 1.0, "time": 0.4}, "plain": {"score": -1e8, "time": 0.1}, "val_accuracy": 83.6},
            "(2, 2, 2, 2, 2, 2)": {"idx": "11", "arch": "z", "snip": {"score": 9.0, "time": 0.6}, "val_accuracy": 93.0},
        }
    }
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(table))
    [result] = import_naslib_zc(path, tmp_path / "t.h5")
    assert result.benchmark.search_space == "nb201" and result.benchmark.index.tolist() == [7, 9, 11]
    assert result.benchmark.encodings[0] == "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
    store = RunStore.open(result.run_path)
    assert store.scores["plain"].tolist()[0] == -0.2
    assert store.status["plain"].tolist() == [OK, FAILED, FAILED]  # -1e8, then absent
    assert result.failures == {"snip": 0, "plain": 2}
    assert store.seconds["snip"].tolist() == [0.5, 0.4, 0.6]


def test_not_a_table_at_all(tmp_path):
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_user_error(invoke("bench", "import", "naslib-zc", binary, "--out", tmp_path / "o.h5"), "is not a text file")
    text = tmp_path / "notes.txt"
    text.write_text("hello\nworld\n")
    assert_user_error(invoke("bench", "import", "naslib-zc", text, "--out", tmp_path / "o.h5"), "neither a NAS-Bench-Suite-Zero JSON table")
    assert_user_error(invoke("bench", "import", "naslib-zc", tmp_path / "absent.json"), "does not exist")


# ------------------------------------------------------------------ the reference's own retest


def _nb101_key(first: int, second: int, dead: int) -> str:
    """An NB101 tuple key: input -> v1 -> v2 -> output, v3..v5 unconnected (pruned away), so
    keys that differ only in the dead vertices' ops are one network."""
    matrix = np.zeros((7, 7), dtype=int)
    matrix[0, 1] = matrix[1, 2] = matrix[2, 6] = 1
    ops = [0, first, second, dead, 4, 4, 1]
    return "(" + ", ".join(str(v) for v in [*matrix.ravel(), *ops]) + ")"


def test_networks_under_two_keys_give_the_references_own_retest(tmp_path):
    """Suite-Zero scored some networks under several keys, each time afresh: the pairs measure
    the reference's run-to-run agreement, which import stores and compare shows."""
    pytest.importorskip("zcnas.spaces.nb101")
    from scipy import stats

    rng = np.random.default_rng(3)
    table, firsts, seconds = {}, [], []
    for i, (first, second) in enumerate([(a, b) for a in (2, 3, 4) for b in (2, 3, 4)]):
        score = float(rng.normal())
        again = score + float(rng.normal(scale=0.7))
        table[_nb101_key(first, second, 3)] = {"snip": score, "grasp": score, "val_accuracy": 90.0 + i}
        if i < 7:  # seven networks also under a second key, two of them under a third
            table[_nb101_key(first, second, 4)] = {"snip": again, "grasp": NASLIB_FAILURE if i < 5 else again, "val_accuracy": 90.0 + i}
            firsts.append(score)
            seconds.append(again)
        if i < 2:
            table[_nb101_key(first, second, 2)] = {"snip": 100.0, "grasp": 100.0, "val_accuracy": 90.0 + i}
    path = tmp_path / "zc_nasbench101.json"
    path.write_text(json.dumps({"nasbench101": {"cifar10": table}}))
    [result] = import_naslib_zc(path, tmp_path / "t.h5")
    assert result.benchmark.n_archs == 9 and result.duplicates == 9
    own = RunStore.open(result.run_path).spec.reference["self_agreement"]
    assert own["networks"] == 7 and "16 keys" in own["measured"]
    snip = own["proxies"]["snip"]
    assert snip["n"] == 7
    assert snip["spearman"]["value"] == pytest.approx(stats.spearmanr(firsts, seconds)[0])
    assert snip["kendall"]["value"] == pytest.approx(stats.kendalltau(firsts, seconds)[0])
    assert snip["spearman"]["low"] <= snip["spearman"]["value"] <= snip["spearman"]["high"]
    assert "grasp" not in own["proxies"]  # only 2 pairs where both keys have a usable score

    result_cli = invoke("compare", result.run_path, result.run_path, "--bootstrap", "0")
    assert result_cli.exit_code == 0, result_cli.output
    assert "reference vs itself" in result_cli.output and "(7)" in result_cli.output
    assert "first two keys of each of the 7 networks" in " ".join(result_cli.output.split())


def test_a_table_without_repeated_networks_has_no_self_agreement(tmp_path):
    table = {"cifar10": {"(0, 2, 3, 2, 3, 1)": {"snip": 3.0, "val_accuracy": 86.0}, "(4, 0, 4, 1, 2, 0)": {"snip": 1.0, "val_accuracy": 83.6}}}
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(table))
    [result] = import_naslib_zc(path, tmp_path / "t.h5")
    assert RunStore.open(result.run_path).spec.reference["self_agreement"] == {
        "measured": "first two keys of each of the 0 networks the table holds under 2 or more keys (0 keys in all)",
        "networks": 0,
        "proxies": {},
    }
    output = invoke("compare", result.run_path, result.run_path, "--bootstrap", "0").output
    assert "reference vs itself" not in output
