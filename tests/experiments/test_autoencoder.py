"""`dlrl autoencoder` (ae, dae, vae, K-fold) and `dlrl finetune` end to end on tiny data, in-process.

Tiny budgets: 256 training images, 1 epoch, t-SNE of 200 encodings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from dlrl.cli import main
from dlrl.rundir import RunDir

TINY = ["data.limit=256", "epochs=1", "threads=1", "model.hidden_dim=32", "latent.tsne=false"]


def run_cli(args: list[str]) -> int:
    return main(["-q", *args])


def error_line(stderr: str) -> str:
    """The one error line (a data-source warning may precede it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("dlrl: error: ")]
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]), stderr
    return errors[0]


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ae") / "run"
    tsne = ["latent.tsne=true", "latent.tsne_samples=100", "latent.n_jobs=1"]
    assert run_cli(["autoencoder", "--variant", "ae", "--out", str(out), *TINY, *tsne]) == 0
    return out


def test_ae_run_writes_metrics_figures_and_pca_baseline(ae_run: Path) -> None:
    result = summary(ae_run)
    assert result["variant"] == "ae" and result["train_images"] == 256 and result["latent_dim"] == 10
    assert 0 < result["test_mse"] < 1 and 0 < result["pca_test_mse"] < 1
    assert result["mse_reduction_vs_pca"] == pytest.approx(1 - result["test_mse"] / result["pca_test_mse"])
    assert result["tsne_points"] == 100 and result["tsne_seconds"] > 0
    for name in ("loss_curves", "reconstructions", "latent_pca", "latent_tsne"):
        assert (ae_run / "figures" / f"{name}.png").stat().st_size > 1000
    assert (ae_run / "checkpoints" / "best.pt").is_file()


def test_evaluate_refuses_a_foreign_checkpoint(ae_run: Path, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(ae_run, run)
    best = run / "checkpoints" / "best.pt"
    for content, detail in (
        ({"foo": torch.zeros(1)}, "missing model"),
        ({"model": [torch.zeros(1)]}, "model is a list"),
        ({"model": {"w": torch.zeros(1)}, "variant": 3}, "variant is an int, not a str"),
    ):
        torch.save(content, best)
        capsys.readouterr()
        assert run_cli(["evaluate", str(run)]) == 2
        assert f"{best}: not a dlrl checkpoint ({detail}" in error_line(capsys.readouterr().err)


def test_dae_run_reports_psnr_by_noise_kind_and_level(tmp_path: Path) -> None:
    out = tmp_path / "dae"
    assert (
        run_cli(
            [
                "autoencoder",
                "--variant",
                "dae",
                "--out",
                str(out),
                *TINY,
                "noise.kind=salt_pepper",
                "noise.level=0.2",
                "noise.psnr_levels=[0.1,0.4]",
            ]
        )
        == 0
    )
    result = summary(out)
    assert {"test_psnr_noisy", "test_psnr_denoised", "test_mse_denoised"} <= set(result)
    table = result["psnr_by_level"]
    assert table["levels"] == [0.1, 0.4]
    assert set(table) == {"levels", "gaussian", "salt_pepper", "mask"}
    # That the DAE denoises (above the noisy PSNR): tests/experiments/test_denoising_and_finetune_start.py
    for name in ("denoising", "psnr_vs_noise"):
        assert (out / "figures" / f"{name}.png").is_file()
    assert not (out / "figures" / "latent_tsne.png").exists()


def test_vae_run_logs_elbo_terms_and_draws_vae_figures(tmp_path: Path) -> None:
    out = tmp_path / "vae"
    assert (
        run_cli(
            [
                "autoencoder",
                "--variant",
                "vae",
                "--out",
                str(out),
                *TINY,
                "model.latent_dim=2",
                "epochs=2",
                "vae.warmup_epochs=2",
            ]
        )
        == 0
    )
    result = summary(out)
    assert result["test_loss"] == pytest.approx(result["test_recon"] + result["test_kl"])
    assert result["test_kl"] > 0
    rows = RunDir(out).read_metrics()
    assert [r["train_beta"] for r in rows] == [0.5, 1.0]  # linear warm-up over 2 epochs
    assert {"train_recon", "train_kl", "val_recon", "val_kl"} <= set(rows[0])
    for name in ("elbo_terms", "prior_samples", "manifold", "interpolation", "reconstructions", "latent_pca"):
        assert (out / "figures" / f"{name}.png").is_file()
    from dlrl.experiments.autoencoder import evaluate

    assert evaluate(RunDir(out))["test_loss"] == pytest.approx(result["test_loss"], rel=1e-6)


def test_kfold_reports_mean_and_spread_then_trains_the_final_model(tmp_path: Path) -> None:
    out = tmp_path / "cv"
    assert run_cli(["autoencoder", "--folds", "2", "--out", str(out), *TINY]) == 0
    result = summary(out)
    folds = [result["cv"]["fold1"]["best_val_loss"], result["cv"]["fold2"]["best_val_loss"]]
    assert result["folds"] == 2
    assert result["cv_val_loss_mean"] == pytest.approx(sum(folds) / 2)
    assert result["cv_val_loss_std"] == pytest.approx(abs(folds[0] - folds[1]) / 2**0.5)
    assert {r["fold"] for r in RunDir(out).read_metrics("cv_metrics.csv")} == {1, 2}
    assert (out / "figures" / "cv_folds.png").is_file() and result["train_images"] == 256


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.latent_dim=0"], "model.latent_dim: Input should be greater than 0"),
        (["noise.level=1.5"], "noise level (sigma) must be in [0, 1], got 1.5"),
        (["noise.kind=mask", "noise.psnr_levels=[0.2,-0.1]"], "must be in [0, 1], got -0.1"),
        (["--folds", "300"], "--folds 300 is more than the 256 training samples"),
        (["--folds", "1"], "folds: Input should be greater than or equal to 2"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert run_cli(["autoencoder", "--out", str(out), *TINY, *args]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not out.exists()


def test_finetune_trains_frozen_finetuned_and_scratch(ae_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    assert (
        run_cli(
            [
                "finetune",
                "--encoder-run",
                str(ae_run),
                "--out",
                str(out),
                "labels=[20,all]",
                "epochs=1",
                "min_steps=3",
                "threads=1",
            ]
        )
        == 0
    )
    result = summary(out)
    assert result["encoder_variant"] == "ae"
    assert set(result["accuracy"]) == {"20", "256"}
    for n in ("20", "256"):
        assert set(result["accuracy"][n]) == {"frozen", "finetuned", "scratch"}
        assert result[f"finetune_gain_{n}"] == pytest.approx(
            result["accuracy"][n]["finetuned"] - result["accuracy"][n]["scratch"]
        )
    assert (out / "figures" / "accuracy_vs_labels.png").is_file()
    # dlrl evaluate of a fine-tuning run: tests/experiments/test_evaluate_independent.py


def test_balanced_subset_is_class_balanced() -> None:
    import numpy as np

    from dlrl.experiments.finetune import balanced_subset

    labels = np.repeat(np.arange(10), 50)
    index = balanced_subset(labels, 100, 10, seed=0)
    assert len(index) == len(set(index.tolist())) == 100
    assert np.bincount(labels[index]).tolist() == [10] * 10
    assert len(balanced_subset(labels, "all", 10, seed=0)) == 500


def _fake_run(path: Path, experiment: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"experiment": experiment}))
    return path


def test_finetune_refuses_bad_encoder_runs(ae_run: Path, tmp_path: Path, capsys) -> None:
    mismatched = tmp_path / "mismatched"
    shutil.copytree(ae_run, mismatched)
    config = yaml.safe_load((mismatched / "config.yaml").read_text())
    config["model"]["latent_dim"] = 7
    (mismatched / "config.yaml").write_text(yaml.safe_dump(config))
    no_checkpoint = tmp_path / "no_checkpoint"
    shutil.copytree(ae_run, no_checkpoint)
    (no_checkpoint / "checkpoints" / "best.pt").unlink()
    foreign = tmp_path / "foreign"
    shutil.copytree(ae_run, foreign)
    torch.save(torch.nn.Linear(2, 2).state_dict(), foreign / "checkpoints" / "best.pt")
    model_list = tmp_path / "model_list"
    shutil.copytree(ae_run, model_list)
    torch.save({"model": [torch.zeros(1)]}, model_list / "checkpoints" / "best.pt")
    cases = [
        (_fake_run(tmp_path / "classifier", "classifier"), "is a 'classifier' run, not an autoencoder run"),
        (tmp_path / "missing", "no such run directory"),
        (tmp_path, "not a dlrl run directory"),
        (mismatched, "checkpoint belongs to another architecture"),
        (no_checkpoint, "checkpoint not found"),
        (foreign, f"{foreign / 'checkpoints' / 'best.pt'}: not a dlrl checkpoint (missing model)"),
        (model_list, f"{model_list / 'checkpoints' / 'best.pt'}: not a dlrl checkpoint (model is a list"),
    ]
    for encoder_run, message in cases:
        out = tmp_path / "out"
        assert run_cli(["finetune", "--encoder-run", str(encoder_run), "--out", str(out)]) == 2
        err = error_line(capsys.readouterr().err)
        assert message in err, (encoder_run, err)
        assert not out.exists()
    assert run_cli(["finetune", "--out", str(tmp_path / "out")]) == 2
    assert "--encoder-run RUN_DIR" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
