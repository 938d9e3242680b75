"""cae inspect (figures) and cae runs (comparing runs)."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress.cli import app
from cae_compress.evaluation.visualize import diverging, error_figure, filter_grid, heat
from conftest import smooth_images

runner = CliRunner()


def test_inspect_writes_four_figures(rgb_model_path, tmp_path):
    Image.fromarray(smooth_images(1, 40)[0]).save(tmp_path / "a.png")
    r = runner.invoke(app, ["inspect", str(tmp_path / "a.png"), "--model-path", str(rgb_model_path), "-o", str(tmp_path / "fig")])
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert names == ["activations.png", "error.png", "filters.png", "reconstructions.png"]
    assert r.stdout.split() == [str(tmp_path / "fig" / n) for n in ["reconstructions.png", "filters.png", "activations.png", "error.png"]]
    # a pair per image: input 40 px upscaled 3x, a gap, the reconstruction
    assert Image.open(tmp_path / "fig" / "reconstructions.png").size == (120 + 2 + 120, 120)


def test_inspect_from_dataset(rgb_model_path, tiny_npz, tmp_path):
    r = runner.invoke(app, ["inspect", "--dataset", str(tiny_npz), "-n", "6", "--model-path", str(rgb_model_path), "-o", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    w, h = Image.open(tmp_path / "reconstructions.png").size
    assert h == 2 * 128 + 6  # 6 pairs in rows of 4: two rows


def test_inspect_without_images_is_an_error(rgb_model_path, tmp_path):
    r = runner.invoke(app, ["inspect", "--model-path", str(rgb_model_path), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no images to inspect" in r.stderr


def test_filter_grid_shows_each_kernel(rgb_model):
    kernel = np.asarray(rgb_model.cae.encoder.get_layer("conv").kernel)
    grid = filter_grid(rgb_model.cae, scale=4)
    assert grid.shape == (12, 4 * 12 + 3 * 2, 3)  # 4 filters of 3x3 at 4x, in one row
    # the first tile is the first kernel, min-max normalized per filter
    k = kernel[..., 0]
    expected = np.rint((k - k.min()) * 255 / (k.max() - k.min())).astype(np.uint8)
    np.testing.assert_array_equal(grid[::4, ::4][:3, :3], expected)


def test_error_figure_marks_the_error():
    a = np.zeros((8, 200, 3), np.uint8)
    b = a.copy()
    b[2, 5] = 40
    b[3, 6] = 2
    fig, top = error_figure(a, b, size=8)
    assert top == 40
    assert fig.shape == (16 + 8, 3 * 200 + 2 * 6, 3)  # title strip above three panels
    err_panel = fig[16:, -200:]
    assert err_panel[2, 5].tolist() == [255, 255, 255] and err_panel[0, 0].tolist() == [0, 0, 0]


def test_colour_maps():
    assert diverging(np.array([-1.0, 0.0, 1.0])).tolist() == [[25, 51, 204], [255, 255, 255], [204, 25, 25]]
    assert heat(np.array([0.0, 10.0]), 10.0).tolist() == [[0, 0, 0], [255, 255, 255]]


def test_runs_compares_runs(tiny_npz, tmp_path):
    from cae_compress.training.train import TrainConfig, train

    for name, l2 in [("plain", 0.0), ("decay", 1e-4)]:
        train(TrainConfig(dataset=str(tiny_npz), code_length=8, filters=4, epochs=1, batch_size=64, l2_penalty=l2), run_dir=tmp_path / "logs" / "dense" / name, quiet=True)
    r = runner.invoke(app, ["runs", str(tmp_path / "logs")])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "model", "dataset"] and len(lines) == 4
    assert "dense/decay" in r.stdout and "0.0001" in r.stdout and "finished" in r.stdout
    r = runner.invoke(app, ["runs", str(tmp_path / "logs"), "--json"])
    records = {rec["run"]: rec for rec in json.loads(r.stdout)}
    assert records["dense/decay"]["l2_penalty"] == 1e-4 and records["dense/plain"]["l2_penalty"] == 0.0
    test = json.loads((tmp_path / "logs" / "dense" / "plain" / "test_results.json").read_text())
    assert records["dense/plain"]["test_psnr"] == pytest.approx(test["psnr"])
    assert records["dense/plain"]["epochs"] == "1/1"


def test_runs_missing_folder(tmp_path):
    r = runner.invoke(app, ["runs", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such folder" in r.stderr
