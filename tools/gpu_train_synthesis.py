"""Train a cheaper synthesis for a trained model (analysis, hyperprior and contexts frozen), on a GPU with PyTorch, export for Keras.

The synthesis is most of a decode (5.1 s of a 12 MP photo's 6.5 s,
``docs/speed.md``); a narrower one decodes faster.  Its input, the decoded
codes, does not depend on it, so it can be trained alone once the rest of
the model is final: the teacher (a folder of ``.npz`` weights written by
``tools/gpu_train_hyperprior.py`` or ``tools/gpu_train_channel_context.py``,
or ``--export-hyperprior``) makes the codes of each crop at a random rate
anchor, exactly as it codes them, and the student synthesis learns to
reconstruct the *original crop* from them (loss ``lambda * 255^2 * MSE`` at
that anchor, the distortion term the teacher was trained with).

The student keeps the teacher's layer kinds and kernel sizes (so the codec's
windows and their context are unchanged) with ``--widths`` channels in its
three hidden stages, and starts from the teacher's synthesis: for each
stage, the channels that carry the most of the teacher's output (activation
RMS on a batch times the norm of the next layer's weights on them), with
their weights, so that it starts near the teacher rather than from noise.

Usage (CPU machine: prepare as in ``tools/gpu_train_channel_context.py``;
GPU machine: ``carry=["gpu"]``)::

    python tools/gpu_train_synthesis.py --photos gpu/photos --teacher gpu/start --widths 128,64,32 --out $OUT/syn --ckpt $OUT/syn/ckpt.pt --minutes 4

``--out`` then holds the teacher's ``.npz`` files with the student's
``synthesis.npz``: ``channel_context.from_torch_export(OUT)`` (a
channel-context teacher) or ``hyperprior.load_torch_export`` into
``build_hyperprior_model(synthesis=hyperprior.synthesis_widths(OUT))``
builds the Keras model.  Checkpoints every minute; a second call resumes.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def teacher_model(folder: str, device):
    """The teacher's mirror (a channel-context model if the folder has contexts), its weights loaded, frozen."""
    import torch

    sys.path.insert(0, HERE)
    import gpu_train_channel_context as cc
    import gpu_train_hyperprior as hp

    has_context = os.path.exists(os.path.join(folder, "context.npz"))
    model = cc.model_class()() if has_context else hp.Hyperprior()
    with np.load(os.path.join(folder, "analysis.npz")) as f:
        anchors = f["gain"].shape[0]
    if anchors > len(hp.LAMBDAS):
        model.extend_anchors(anchors - len(hp.LAMBDAS))
    hp.import_weights(model, folder)
    if has_context:
        cc.load_contexts_into(model, folder)
        with np.load(os.path.join(folder, "context.npz")) as f:
            lambdas = tuple(float(v) for v in f["lambdas"]) if "lambdas" in f.files else hp.LAMBDAS
    else:
        lambdas = hp.LAMBDAS
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, torch.tensor(lambdas, device=device)


def student_model(teacher, widths, sample_codes, sample_level):
    """A synthesis with ``widths`` hidden channels, started from the teacher's most used channels (see the module)."""
    import torch
    import torch.nn as nn

    import gpu_train_hyperprior as hp

    class Synthesis(nn.Module):
        def __init__(self):
            super().__init__()
            ins = (hp.M, *widths)
            outs = (*widths, 3)
            layers = []
            for i in range(4):
                layers.append(hp.Deconv(ins[i], outs[i], 5, 2))
                if i < 3:
                    layers.append(hp.GDN(outs[i], True))
            self.g_s = nn.ModuleList(layers)
            self.inverse_gain = nn.Parameter(teacher.inverse_gain.detach().clone())

        def forward(self, y_hat, level):
            x = y_hat * torch.exp(self.inverse_gain[level])[:, :, None, None]
            for layer in self.g_s:
                x = layer(x)
            return x

    student = Synthesis().to(sample_codes.device)
    with torch.no_grad():
        acts, x = [], sample_codes * torch.exp(teacher.inverse_gain[sample_level])[:, :, None, None]
        for i, layer in enumerate(teacher.g_s):
            x = layer(x)
            if i % 2 == 1:
                acts.append(x.pow(2).mean(dim=(0, 2, 3)).sqrt())  # RMS of each channel after the inverse GDN
        keep_in = torch.arange(hp.M, device=x.device)
        for i in range(4):
            t_conv, s_conv = teacher.g_s[2 * i].conv, student.g_s[2 * i].conv  # ConvTranspose2d weight: (in, out, k, k)
            if i < 3:
                nxt = teacher.g_s[2 * i + 2].conv.weight  # (in = this stage's channels, out, k, k)
                importance = acts[i] * nxt.pow(2).sum(dim=(1, 2, 3)).sqrt()
                keep = torch.sort(torch.topk(importance, widths[i]).indices).values
            else:
                keep = torch.arange(3, device=x.device)
            s_conv.weight.copy_(t_conv.weight[keep_in][:, keep])
            s_conv.bias.copy_(t_conv.bias[keep])
            if i < 3:
                t_gdn, s_gdn = teacher.g_s[2 * i + 1], student.g_s[2 * i + 1]
                s_gdn.beta.copy_(t_gdn.beta[keep])
                s_gdn.gamma.copy_(t_gdn.gamma[keep][:, keep])
            keep_in = keep
    return student


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--photos", required=True)
    p.add_argument("--teacher", required=True, help="a folder of the trained model's .npz weights, or a GPU slot's packed NAME.npz (e.g. weights/cc-slot1.npz)")
    p.add_argument("--widths", default="128,64,32", help="the student synthesis' hidden widths (the teacher's: 128,128,128)")
    p.add_argument("--out", required=True)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--total-minutes", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-steps", type=int, default=0)
    args = p.parse_args()
    import torch

    import gpu_train_hyperprior as hp  # tools/, the script's folder, is on sys.path

    widths = tuple(int(v) for v in args.widths.split(","))
    if len(widths) != 3 or min(widths) < 1:
        p.error("--widths takes three positive numbers, e.g. 128,64,32")
    if os.path.isfile(args.teacher):  # a slot's packed file (13 MiB travels; its 26 MB of float32 groups are made here)
        import gpu_slot
        import import_gpu_run

        arrays, _ = gpu_slot.read_weights(args.teacher)
        args.teacher = str(import_gpu_run.unpack(arrays, Path(args.out).parent / (Path(args.teacher).stem + "-teacher")))
    dev = hp.device(args.device, args.seed)
    teacher, lambdas = teacher_model(args.teacher, dev)
    images = hp.load_photos(args.photos, dev)
    gen = np.random.default_rng(args.seed)
    pool = hp.crop_pool(images, 64, args.crop, gen)
    with torch.no_grad():
        sample = pool[: min(16, len(pool))].float().div_(255.0)
        level = torch.as_tensor(gen.integers(0, len(lambdas), size=len(sample)), device=dev)
        student = student_model(teacher, widths, teacher.code(sample, level)[0], level)
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    step, trained_s = 0, 0.0
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, map_location=dev)
        student.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, trained_s = ck["step"], ck["trained_s"]
        print(f"resumed at step {step}, {trained_s / 60:.1f} min trained", flush=True)
    else:
        print(f"student {widths} from the teacher's synthesis in {args.teacher}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.teacher):  # the frozen parts, as they are
        if name.endswith(".npz") and name != "synthesis.npz":
            shutil.copy(os.path.join(args.teacher, name), os.path.join(args.out, name))
    gen = np.random.default_rng(args.seed + 1 + step)
    data = hp.batches(images, args.batch, args.crop, len(lambdas), gen)
    history, reference = [], []
    t0 = last_log = last_save = time.time()
    while time.time() - t0 < args.minutes * 60 and (not args.max_steps or step < args.max_steps):
        x, level = next(data)
        with torch.no_grad():
            y_hat = teacher.code(x, level)[0]
            if step % 10 == 0:  # the teacher's loss on the same crops, for the log: how far behind the student is
                t_mse = ((teacher.synthesise(y_hat, level) - x) ** 2).mean(dim=(1, 2, 3))
                reference.append((len(history), float((lambdas[level] * 255.0**2 * t_mse).mean())))
        for g in opt.param_groups:
            g["lr"] = hp.cosine_lr(args.lr, args.lr_min, min((trained_s + time.time() - t0) / (args.total_minutes * 60), 1.0))
        mse = ((student(y_hat, level) - x) ** 2).mean(dim=(1, 2, 3))
        loss = (lambdas[level] * 255.0**2 * mse).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        step += 1
        history.append(float(loss.detach()))
        if not math.isfinite(history[-1]):
            raise SystemExit("loss is not finite")
        now = time.time()
        if now - last_log > 60:
            print(f"step {step} {(trained_s + now - t0) / 60:.1f} min {_versus(history, reference)}", flush=True)
            last_log = now
        if now - last_save > 60:
            _save(torch, student, opt, step, trained_s + now - t0, args)
            last_save = now
    _save(torch, student, opt, step, trained_s + time.time() - t0, args)
    k = max(1, min(10, len(history) // 2))
    print(f"done: step {step}, loss {np.mean(history[:k]):.4f} (first {k} steps) -> {np.mean(history[-k:]):.4f} (last {k}); "
          f"{_versus(history, reference)}", flush=True)


def _versus(history, reference) -> str:
    """The student's loss against the teacher's on the same crops (the last 20 batches where both were measured)."""
    pairs = reference[-20:]
    student, teacher = np.mean([history[i] for i, _ in pairs]), np.mean([t for _, t in pairs])
    return f"student {student:.4f} vs teacher {teacher:.4f} on the same crops ({100 * (student / teacher - 1):+.1f} %)"


def _save(torch, student, opt, step, trained_s, args) -> None:
    import gpu_train_hyperprior as hp

    tmp = args.ckpt + ".part"
    torch.save({"model": student.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": trained_s}, tmp)
    os.replace(tmp, args.ckpt)
    np.savez(os.path.join(args.out, "synthesis.npz"), **hp.export_synthesis(student.g_s, student.inverse_gain))


if __name__ == "__main__":
    main()
