"""cae bench: the numbers are consistent with the files and recomputable."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress import codec
from cae_compress.evaluation.baselines import PCAModel, classic_at_bytes, classic_decode
from cae_compress.evaluation.bench import run_bench
from cae_compress.cli import app
from cae_compress.evaluation.metrics import ssim
from conftest import smooth_images

runner = CliRunner()


def test_rows_match_the_real_files(rgb_model, tiny_npz):
    rows = run_bench([rgb_model], str(tiny_npz), "uint8", limit=10, baselines=("jpeg", "webp", "pca"))
    assert [r.codec for r in rows] == ["cae", "jpeg", "webp", "pca"]
    cae = rows[0]
    images = list(np.load(tiny_npz)["x_test"][:10])
    files = [codec.encode(rgb_model, im, "uint8") for im in images]
    outs = [codec.decode(rgb_model, f) for f in files]
    total = sum(len(f) for f in files)
    assert cae.bytes == pytest.approx(total / 10)
    assert cae.ratio == pytest.approx(10 * 16 * 16 * 3 / total)  # raw bytes over file bytes
    assert cae.bpp == pytest.approx(8 * total / (10 * 16 * 16))
    mse = np.array([np.mean((a.astype(float) - b) ** 2) for a, b in zip(images, outs)])
    assert cae.mse == pytest.approx(mse.mean())
    assert cae.psnr == pytest.approx(np.mean(10 * np.log10(255**2 / mse)))
    # the classic codecs respect the byte budget where they can reach it at all
    webp_files = [classic_at_bytes(im, "webp", len(f)) for im, f in zip(images, files)]
    assert all(len(d) <= len(f) or q == 1 for (d, q), f in zip(webp_files, files))
    assert rows[2].bytes == pytest.approx(np.mean([len(d) for d, _ in webp_files]))
    # PCA goes through the same container: same bytes as the model with the same code length
    assert rows[3].name == "pca-24" and rows[3].bytes == pytest.approx(cae.bytes, abs=2)


def test_ssim_matches_tensorflow():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-25, 25, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(float(tf.image.ssim(a, b, 255)), abs=1e-5)
    assert ssim(a, a) == pytest.approx(1.0)


def test_classic_at_bytes_picks_the_best_quality_that_fits():
    img = smooth_images(1, 64)[0]
    data, q = classic_at_bytes(img, "jpeg", 1500)
    assert len(data) <= 1500 and q < 100
    from cae_compress.evaluation.baselines import classic_encode

    assert len(classic_encode(img, "jpeg", q + 1)) > 1500
    assert classic_decode(data, 3).shape == img.shape


def test_pca_is_the_best_linear_code():
    x = smooth_images(300, 8, seed=5)
    pca = PCAModel(x, 6)
    codes = pca.encode_tiles(x)
    assert codes.shape == (300, 6)
    recon = pca.decode_tiles(codes)
    err = np.mean((recon.astype(float) - x) ** 2)
    # any other orthonormal 6-dim projection does worse
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(192, 6)))
    flat = x.reshape(300, -1) / 255.0
    mean = flat.mean(0)
    other = ((flat - mean) @ q @ q.T + mean) * 255
    assert err < np.mean((other - x.reshape(300, -1)) ** 2)


def test_bench_cli_outputs(rgb_model_path, tiny_npz, tmp_path):
    args = ["bench", "--dataset", str(tiny_npz), "--model-path", str(rgb_model_path), "-n", "5"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:3] == ["codec", "name", "code"] and len(r.stdout.splitlines()) == 8  # header, rule, model, jpeg, webp, avif, jxl, pca
    r = runner.invoke(app, args + ["--json", "--plot", str(tmp_path / "rd.png")])
    data = json.loads(r.stdout)
    names = [c["name"] for c in data["codecs"]]
    assert names == ["cae", "jpeg", "webp", "avif", "jxl", "pca"]
    for c in data["codecs"]:
        assert set(c["results"]) >= {"psnr-rgb", "bpp", "encoding_time", "decoding_time"}
    assert (tmp_path / "rd.png").stat().st_size > 1000 and "plot:" in r.stderr
    r = runner.invoke(app, args + ["--csv", "--baselines", "jpeg"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["codec"] for row in rows] == ["cae", "jpeg"]
    assert set(rows[0]) >= {"bpp", "ratio", "mse", "psnr", "ssim", "encode_ms", "decode_ms"}


def test_bench_on_a_folder_of_photos(rgb_model_path, tmp_path):
    from PIL import Image

    for i, img in enumerate(smooth_images(3, 50, seed=2)):
        Image.fromarray(img[:, : 30 + 7 * i]).save(tmp_path / f"{i}.png")
    deep = (smooth_images(1, 50, seed=3)[0][..., 0].astype(np.uint16) * 257)[:, :40]  # a 16-bit grey photo: reduced, and said
    Image.fromarray(deep).save(tmp_path / "deep.png")
    r = runner.invoke(app, ["bench", "--dataset", str(tmp_path), "--model-path", str(rgb_model_path), "--baselines", "jpeg,webp,pca"])
    assert r.exit_code == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()[2:]] == ["cae", "jpeg", "webp"]  # no PCA without a training split
    assert "cae: warning: " in r.stderr and "16-bit samples reduced to 8 bits" in r.stderr and "CaeWarning" not in r.stderr


def test_bench_errors(tiny_npz, rgb_model_path, tmp_path, monkeypatch):
    from cae_compress import zoo

    monkeypatch.setattr(zoo, "PRETRAINED_DIR", tmp_path)  # an install without shipped models
    r = runner.invoke(app, ["bench", "--dataset", str(tiny_npz)])
    assert r.exit_code == 2 and "no models to bench" in r.stderr
    r = runner.invoke(app, ["bench", "--dataset", str(tiny_npz), "--model-path", str(rgb_model_path), "--baselines", "png"])
    assert r.exit_code == 2 and "unknown baseline 'png'" in r.stderr


def test_rate_models_get_the_classic_curves_and_a_bd_rate(rate_model_path, tmp_path):
    from PIL import Image

    from cae_compress import zoo
    from cae_compress.evaluation.bench import CURVE_QUALITIES, rate_summary, to_json

    for i, img in enumerate(smooth_images(2, 48, seed=9)):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    model = zoo.load(model_path=rate_model_path)
    rows = run_bench([model], str(tmp_path), baselines=("jpeg",))
    assert rows[0].codec == "cae-rate" and rows[0].code_length is None
    assert rows[0].bytes == pytest.approx(np.mean([len(codec.encode(model, np.asarray(Image.open(tmp_path / f"{i}.png")))) for i in range(2)]))
    curve = [r for r in rows if r.codec == "jpeg" and " q" in r.name]
    assert [r.name for r in curve] == [f"jpeg q{q}" for q in CURVE_QUALITIES]
    assert all(a.bpp <= b.bpp for a, b in zip(curve, curve[1:]))  # JPEG's rate grows with its quality
    summary = rate_summary(rows)
    assert "bd_rate_vs_jpeg" in summary and "bd_rate_vs_jpeg" in to_json(rows, "x")


def test_ms_ssim_matches_tensorflow():
    import tensorflow as tf

    from cae_compress.evaluation.metrics import ms_ssim

    rng = np.random.default_rng(5)
    for h, w in ((192, 256), (181, 203), (256, 176)):  # even and odd sides: the padding between scales
        a = smooth_images(1, 256, seed=h)[0][:h, :w].astype(np.float32)
        b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.float32)
        expected = float(tf.image.ssim_multiscale(a[None], b[None], 255.0)[0])
        assert ms_ssim(a, b) == pytest.approx(expected, abs=1e-4)
        assert 0.5 < expected < 0.999  # a real difference, not a constant
    assert ms_ssim(a, a) == pytest.approx(1.0)


def test_results_dir_files_read_back_through_compare(rate_model_path, tmp_path):
    """--results-dir writes one CompressAI-shaped file per codec; --compare reads them back as curves."""
    import json

    imgs = smooth_images(4, 48, seed=9)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(folder / f"{i}.png")
    out = tmp_path / "results"
    args = ["bench", "--dataset", str(folder), "--model-path", str(rate_model_path), "--baselines", "jpeg,webp", "--results-dir", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    files = sorted(out.glob("*.json"))
    assert {p.stem for p in files} == {"cae-rate", "jpeg", "webp"}
    for p in files:
        data = json.loads(p.read_text())
        assert set(data) == {"name", "description", "results"} and data["name"] == p.stem
        lists = data["results"]
        assert set(lists) >= {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
        assert len({len(v) for v in lists.values()}) == 1 and len(lists["bpp"]) >= 1
        assert "images" in data["description"] and "Pillow" in data["description"]
    webp = json.loads((out / "webp.json").read_text())["results"]
    from cae_compress.evaluation.bench import CURVE_QUALITIES

    assert len(webp["bpp"]) == len(CURVE_QUALITIES) and webp["bpp"] == sorted(webp["bpp"])  # WebP's own curve, one point per quality
    r = runner.invoke(app, args[:-2] + ["--compare", str(out / "webp.json"), "--json", "--plot", str(tmp_path / "rd.png")])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["compare"][0]["name"] == "webp" and report["compare"][0]["bpp"] == webp["bpp"]
    assert "cae-rate_bd_rate_vs_webp" in report  # the same curve read from the file: the same BD-rate as measured
    from_file, measured = report["cae-rate_bd_rate_vs_webp"], report["bd_rate_vs_webp"]
    assert (from_file is None) == (measured is None)
    assert from_file is None or from_file == pytest.approx(measured, abs=1e-6)
    assert (tmp_path / "rd.png").stat().st_size > 0


@pytest.mark.parametrize("content, fragment", [
    ("not json", "not JSON"),
    ('{"codecs": []}', "no top-level 'name' and 'results'"),
    ('{"name": "x", "results": {"bpp": [0.1, 0.2]}}', "missing psnr-rgb"),
    ('{"name": "x", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30]}}', "different lengths"),
])
def test_compare_refuses_a_file_of_another_shape(tmp_path, content, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    r = runner.invoke(app, ["bench", "--compare", str(bad)])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and fragment in r.stderr and "CompressAI's shape" in r.stderr


def test_bd_rates_over_the_field_range_and_the_top_of_the_range():
    """0.2-1.0 bpp as before, and 1.0-2.0 bpp under keys ending in _1-2bpp: n/a for a curve that stops below 1 bpp."""
    from cae_compress.evaluation.bench import Row, format_table, rate_summary

    def row(codec, name, bpp, psnr):
        return Row(codec, name, None, 1, 0, bpp, 1, 1, psnr, 1, 1, 0, 0)

    points = ((10, 0.15, 27.0), (30, 0.4, 30.0), (60, 0.9, 33.0), (75, 1.2, 34.5), (85, 1.6, 36.5), (90, 2.0, 38.0), (95, 2.4, 39.5))
    webp = [row("webp", f"webp q{q}", b, p) for q, b, p in points]
    wide = [row("cae-wide", f"wide q{i}", 0.9 * w.bpp, w.psnr) for i, w in enumerate(webp)]  # 10 % fewer bits all along
    short = [row("cae-short", f"short q{i}", 0.9 * w.bpp, w.psnr) for i, w in enumerate(webp[:3])]  # stops at 0.81 bpp
    summary = rate_summary(webp + wide + short)
    assert summary["cae-wide_bd_rate_vs_webp"] == pytest.approx(-10.0, abs=0.5)
    assert summary["cae-wide_bd_rate_vs_webp_1-2bpp"] == pytest.approx(-10.0, abs=0.5)
    assert summary["cae-short_bd_rate_vs_webp"] == pytest.approx(-10.0, abs=1.0) and summary["cae-short_bd_rate_vs_webp_1-2bpp"] is None
    table = format_table(webp + wide + short)
    assert "BD-rate of cae-wide vs WEBP over 1.0-2.0 bpp: -10.0%" in table and "cae-short vs WEBP over 1.0-2.0 bpp: n/a" in table


def test_two_models_of_one_architecture_are_two_codecs(tmp_path):
    """Two channel-context models (the shipped one, from two folders): two curves, two result files, BD-rates of each against the other."""
    from cae_compress import zoo
    from cae_compress.evaluation.bench import bench_labels, result_files

    if "channel-context" not in zoo.shipped_models():
        pytest.skip("no shipped channel-context model")
    shipped = zoo.shipped_models()["channel-context"].parent
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for f in shipped.glob("channel-context.*"):
            (tmp_path / folder / f.name).symlink_to(f)
    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(smooth_images(2, 64, seed=4)):
        Image.fromarray(img).save(images / f"{i}.png")
    paths = [str(tmp_path / f / "channel-context.keras") for f in ("a", "b")]
    r = runner.invoke(app, ["bench", "-d", str(images), *sum((["--model-path", p] for p in paths), []), "--qualities", "0,40,100",
                            "--baselines", "webp", "--fast", "--json", "--results-dir", str(tmp_path / "results")])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    curves = {c["name"]: c["results"] for c in report["codecs"]}
    ours = ["cae-a-channel-context", "cae-b-channel-context"]
    assert set(ours + [f"{c}-fast" for c in ours]) <= set(curves)
    for name in ours:
        assert curves[name]["name"] == [f"{name[4:]} q{q}" for q in (0, 40, 100)]  # three points each, not six in one curve
        assert curves[f"{name}-fast"]["bpp"] == curves[name]["bpp"]  # the same files, decoded through the fast synthesis
        assert curves[f"{name}-fast"]["psnr-rgb"] != curves[name]["psnr-rgb"]
    assert report["cae-a-channel-context_bd_rate_vs_cae-b-channel-context"] == pytest.approx(0.0, abs=1e-9)  # the same weights
    assert report["cae-b-channel-context_bd_rate_vs_cae-a-channel-context"] == pytest.approx(0.0, abs=1e-9)
    assert report["cae-a-channel-context-fast_bd_rate_vs_full"] > 0  # the cheaper synthesis costs bits at equal PSNR
    assert {p.stem for p in (tmp_path / "results").glob("*.json")} >= set(ours)
    models = [zoo.load(model_path=p) for p in paths] + [zoo.load("channel-context")]
    assert bench_labels(models) == ["a-channel-context", "b-channel-context", "pretrained-channel-context"]
    assert bench_labels(models[:1] + [zoo.load("hyperprior")]) == ["channel-context", "hyperprior"]
