"""Train the ``channel-context`` model on a GPU with PyTorch (joint fine-tune from the shipped hyperprior), export for Keras.

A mirror of ``cae_compress.models.channel_context`` on top of the
hyperprior mirror in ``tools/gpu_train_hyperprior.py`` (same layers, same
padding, same loss), for the lent GPU machines, which have PyTorch and no
TensorFlow.  It starts from the shipped hyperprior exactly as
``channel_context.warm_start`` does (mean contexts zero, scale contexts
passing the scale branch's features through to its last layer: at step 0
it codes as the hyperprior) and trains everything jointly, so that the
codes become predictable from the slices before them.

Prepare on the CPU machine (TensorFlow there), then carry both folders::

    python tools/make_gpu_data.py --photos ../shared/data/photos --out gpu/photos --budget-mb 48   # 446 photos, 46 MiB
    python tools/gpu_train_channel_context.py --export-hyperprior gpu/start   # the shipped weights as .npz, 12 MB (needs TensorFlow)

and on the GPU machine (the device tool's ``run``, ``carry=["gpu"]``; ``gpu/`` is git-ignored)::

    python tools/gpu_train_channel_context.py --photos gpu/photos --out $OUT/cc --ckpt $OUT/cc/ckpt.pt --init-npz gpu/start --minutes 9 --total-minutes 9 --top-anchors --balance-anchors

(``--balance-anchors``: with the top anchors, unbalanced training pulls the
shared weights towards the top; on the CPU, 2,950 steps each, it cost
+3.0 % BD-rate over 0.2-1.0 bpp against the hyperprior, balanced +1.2 %,
with the same top of the range: ``docs/models.md``.)  The same machine
call can go on to distil a cheaper synthesis from the result
(``tools/gpu_train_synthesis.py --teacher $OUT/cc``).

and back on the CPU machine, ``channel_context.from_torch_export(OUT)``
builds the Keras model (with the run's rate anchors: ``--top-anchors`` adds
three above the hyperprior's, for qualities up to about 2 bpp) and loads
``OUT/*.npz`` into it (then save it and ``cae export``).  A
run split over several calls keeps one cosine schedule over
``--total-minutes``; checkpoints every minute (``--ckpt``, and the
``.npz`` files in ``--out``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SLICES = 4  # as cae_compress.latent.channel_context.SLICES (this script runs where cae_compress may not import)
CONTEXT_WIDTH = 64  # the mean contexts' hidden width (channel_context.CONTEXT_WIDTH)
TOP_LAMBDAS = (0.0932, 0.18, 0.36)  # --top-anchors: rate anchors above the hyperprior's (channel_context.TOP_LAMBDAS), for qualities up to ~2 bpp


def slice_bounds(channels: int, slices: int = SLICES) -> list[tuple[int, int]]:
    cuts = [i * channels // slices for i in range(slices + 1)]
    return list(zip(cuts, cuts[1:]))


def export_hyperprior(folder: str) -> None:
    """The shipped hyperprior's weights as the .npz files the PyTorch mirror reads (run where TensorFlow is)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from cae_compress import zoo
    from cae_compress.models import load_model
    from cae_compress.models.hyperprior import export_torch_npz

    export_torch_npz(load_model(zoo.model_file("hyperprior")[0]), folder)
    print(f"wrote {folder}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--export-hyperprior", default=None, help="only write the shipped hyperprior's weights to this folder (needs TensorFlow)")
    p.add_argument("--photos")
    p.add_argument("--out")
    p.add_argument("--ckpt")
    p.add_argument("--init-npz", default=None, help="the hyperprior's weights (--export-hyperprior), or a folder this script wrote")
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--total-minutes", type=float, default=25.0)
    p.add_argument("--trained-minutes", type=float, default=0.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4, help="a fine-tune: lower than the hyperprior's 5e-4")
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--top-anchors", action="store_true", help="train three more rate anchors above the hyperprior's (gains extrapolated to start)")
    p.add_argument("--balance-anchors", action="store_true", help="each image's loss over its anchor's running mean (gpu_train_hyperprior.AnchorBalance)")
    args = p.parse_args()
    if args.export_hyperprior:
        return export_hyperprior(args.export_hyperprior)
    if not (args.photos and args.out and args.ckpt):
        p.error("--photos, --out and --ckpt are needed to train")
    train(args)


def model_class():
    """The PyTorch mirror of ``ChannelContextCAE`` (PyTorch imported here: ``--export-hyperprior`` runs without it)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    sys.path.insert(0, HERE)
    import gpu_train_hyperprior as hp

    class ChannelContext(hp.Hyperprior):
        def __init__(self):
            super().__init__()
            self.bounds = slice_bounds(hp.M)
            self.mean_ctx = nn.ModuleList(
                [nn.ModuleList([hp.Conv(a, CONTEXT_WIDTH, 3, 1), hp.Conv(CONTEXT_WIDTH, b - a, 1, 1)]) for a, b in (self.bounds[i] for i in range(1, SLICES))]
            )
            self.scale_ctx = nn.ModuleList(
                [nn.ModuleList([hp.Conv(hp.S + a, hp.S, 1, 1), hp.Conv(hp.S, b - a, 1, 1)]) for a, b in (self.bounds[i] for i in range(1, SLICES))]
            )

        def extend_anchors(self, extra: int):
            """``extra`` more rate anchors above the top one, their log-gains extrapolated from the top two (the lambdas double)."""
            with torch.no_grad():
                for name in ("gain", "inverse_gain"):
                    g = getattr(self, name).data
                    step = g[-1] - g[-2]
                    rows = [g[-1] + (j + 1) * step for j in range(extra)]
                    setattr(self, name, nn.Parameter(torch.cat([g, torch.stack(rows)]) if rows else g.clone()))

        def warm_start(self):
            """As channel_context.warm_start: code exactly as the hyperprior to begin with."""
            with torch.no_grad():
                last_k, last_b = self.h_scale[2].conv.weight, self.h_scale[2].conv.bias  # (M, S, 1, 1), (M,)
                for (mc, sc), (a, b) in zip(zip(self.mean_ctx, self.scale_ctx), self.bounds[1:]):
                    mc[1].conv.weight.zero_()
                    mc[1].conv.bias.zero_()
                    k0 = torch.zeros_like(sc[0].conv.weight)
                    k0[:, : hp.S, 0, 0] = torch.eye(hp.S, device=k0.device)
                    sc[0].conv.weight.copy_(k0)
                    sc[0].conv.bias.zero_()
                    sc[1].conv.weight.copy_(last_k[a:b])
                    sc[1].conv.bias.copy_(last_b[a:b])

        def code(self, x, level):
            """As the hyperprior's, slice after slice with the contexts (cae_compress.latent.channel_context.ChannelContext.likelihood)."""
            y, z_hat, z_noisy = self.analyse(x, level)
            hyper_mean = self._chain(self.h_mean, z_hat, lambda t: F.leaky_relu(t, 0.01))
            features = F.relu(self.h_scale[1](F.relu(self.h_scale[0](z_hat))))
            hyper_log_scale = self.h_scale[2](features)
            clip = (math.log(hp.SCALE_MIN), math.log(hp.SCALE_MAX))
            decoded, symbols, bits_y = [], [], 0.0
            for i, (a, b) in enumerate(self.bounds):
                mean, log_scale = hyper_mean[:, a:b], hyper_log_scale[:, a:b]
                if i:
                    prev = torch.cat(decoded, 1)
                    mean = mean + self.mean_ctx[i - 1][1](F.relu(self.mean_ctx[i - 1][0](prev)))
                    log_scale = self.scale_ctx[i - 1][1](F.relu(self.scale_ctx[i - 1][0](torch.cat([features, *symbols], 1))))
                scale = torch.exp(log_scale.clamp(*clip))
                r = hp.ste_round(y[:, a:b] - mean)
                noisy = r + mean if self.rounded_rates else y[:, a:b] + torch.empty_like(r).uniform_(-0.5, 0.5)
                bits_y = bits_y - torch.log2(hp.gaussian_likelihood(noisy, mean, scale)).sum(dim=(1, 2, 3))
                decoded.append(r + mean)
                symbols.append(r)
            bits_z = -torch.log2(self.prior(z_noisy)).sum(dim=(1, 2, 3))
            return torch.cat(decoded, 1), bits_y, bits_z

    return ChannelContext


def load_contexts_into(model, folder) -> bool:
    """The contexts of ``folder/context.npz`` (Keras layouts; or a dict by ``context/KEY``) into the mirror ``model``; False if there are none."""
    import torch

    if isinstance(folder, dict):  # arrays by GROUP/KEY (tools/gpu_slot.py's packed file)
        f = {k.split("/", 1)[1]: v for k, v in folder.items() if k.startswith("context/")}
        if not f:
            return False
    else:
        path = os.path.join(folder, "context.npz")
        if not os.path.exists(path):
            return False
        with np.load(path) as npz:
            f = {k: npz[k] for k in npz.files}
    with torch.no_grad():
        for i, (mc, sc) in enumerate(zip(model.mean_ctx, model.scale_ctx), start=1):
            for j in range(2):
                for name, net in (("mean_context", mc), ("scale_context", sc)):
                    net[j].conv.weight.copy_(torch.from_numpy(f[f"{name}_{i}_{j}/kernel"].astype(np.float32).transpose(3, 2, 0, 1).copy()))
                    net[j].conv.bias.copy_(torch.from_numpy(f[f"{name}_{i}_{j}/bias"].astype(np.float32)))
    return True


def export_groups(model, lambdas) -> dict[str, dict[str, np.ndarray]]:
    """The mirror's weights as the ``.npz`` groups ``channel_context.from_torch_export`` reads (the hyperprior's and ``context``)."""
    sys.path.insert(0, HERE)
    import gpu_train_hyperprior as hp

    groups = hp.export_weights(model)
    ctx = {}
    for i, (mc, sc) in enumerate(zip(model.mean_ctx, model.scale_ctx), start=1):
        for j in range(2):
            ctx[f"mean_context_{i}_{j}/kernel"] = hp._tf_conv(mc[j].conv)
            ctx[f"mean_context_{i}_{j}/bias"] = mc[j].conv.bias.detach().cpu().numpy()
            ctx[f"scale_context_{i}_{j}/kernel"] = hp._tf_conv(sc[j].conv)
            ctx[f"scale_context_{i}_{j}/bias"] = sc[j].conv.bias.detach().cpu().numpy()
    ctx["lambdas"] = np.array(lambdas, np.float64)
    groups["context"] = ctx
    return groups


def train(args) -> None:
    import torch

    sys.path.insert(0, HERE)
    import gpu_train_hyperprior as hp

    ChannelContext = model_class()
    lambdas_list = tuple(hp.LAMBDAS) + (TOP_LAMBDAS if args.top_anchors else ())

    def export(model) -> dict:
        return export_groups(model, lambdas_list)

    t_start = time.time()
    dev = hp.device(args.device, args.seed)
    model = ChannelContext().to(dev)
    extra = len(lambdas_list) - len(hp.LAMBDAS)
    step, trained_s, ck = 0, 0.0, None
    if os.path.exists(args.ckpt):
        model.extend_anchors(extra)
        ck = torch.load(args.ckpt, map_location=dev)
        model.load_state_dict(ck["model"])
        step, trained_s = ck["step"], ck["trained_s"]
        print(f"resumed at step {step}, {trained_s / 60:.1f} min trained", flush=True)
    elif args.init_npz:
        with np.load(os.path.join(args.init_npz, "analysis.npz")) as f:
            anchors = f["gain"].shape[0]
        if anchors not in (len(hp.LAMBDAS), len(lambdas_list)):
            raise SystemExit(f"{args.init_npz} has {anchors} rate anchors; this run trains {len(lambdas_list)}")
        model.extend_anchors(anchors - len(hp.LAMBDAS))
        hp.import_weights(model, args.init_npz)
        if load_contexts_into(model, args.init_npz):
            trained_s = args.trained_minutes * 60
            print(f"weights and contexts from {args.init_npz}", flush=True)
        else:
            model.warm_start()
            print(f"hyperprior weights from {args.init_npz}; contexts warm-started (the hyperprior exactly)", flush=True)
        model.extend_anchors(len(lambdas_list) - anchors)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    if ck is not None:
        opt.load_state_dict(ck["opt"])
    gen = np.random.default_rng(args.seed + step)
    images = hp.load_photos(args.photos, dev)
    print(f"{len(images)} photos loaded in {time.time() - t_start:.1f} s", flush=True)
    lambdas = torch.tensor(lambdas_list, device=dev)
    balance = hp.AnchorBalance(len(lambdas_list), dev) if args.balance_anchors else None
    os.makedirs(args.out, exist_ok=True)
    data = hp.batches(images, args.batch, args.crop, len(lambdas_list), gen)
    t0 = last_log = last_save = time.time()
    history = []
    while time.time() - t0 < args.minutes * 60 and (not args.max_steps or step < args.max_steps):
        x, level = next(data)
        progress = min((trained_s + time.time() - t0) / (args.total_minutes * 60), 1.0)
        lr = hp.cosine_lr(args.lr, args.lr_min, progress)
        loss, _, _ = hp.train_step(model, opt, x, level, lambdas, lr, balance)
        step += 1
        history.append(float(loss.detach()))
        now = time.time()
        if not math.isfinite(history[-1]):
            raise SystemExit("loss is not finite")
        if now - last_log > 60 or (args.max_steps and step == args.max_steps):
            el = trained_s + now - t0
            print(f"step {step} {el / 60:.1f} min lr {lr:.2e} {step / max(el, 1e-9):.2f} it/s loss {np.mean(history[-50:]):.4f}", flush=True)
            last_log = now
        if now - last_save > 60:
            _save(torch, model, opt, step, trained_s + now - t0, args, export)
            last_save = now
    _save(torch, model, opt, step, trained_s + time.time() - t0, args, export)
    print(f"done: step {step}, {(trained_s + time.time() - t0) / 60:.1f} min trained", flush=True)


def _save(torch, model, opt, step, trained_s, args, export) -> None:
    tmp = args.ckpt + ".part"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": trained_s}, tmp)
    os.replace(tmp, args.ckpt)
    for group, arrays in export(model).items():
        np.savez(os.path.join(args.out, f"{group}.part.npz"), **arrays)
        os.replace(os.path.join(args.out, f"{group}.part.npz"), os.path.join(args.out, f"{group}.npz"))
    with open(os.path.join(args.out, "progress.txt"), "w") as f:
        f.write(f"{step} {trained_s:.1f}\n")


if __name__ == "__main__":
    main()
