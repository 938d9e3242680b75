"""One command for a lent GPU machine: train an architecture from a weights file for a fixed number of minutes.

A lent H200 comes for 15 minutes now and then, bare (PyTorch, no
TensorFlow), and what travels is 64 MiB in and 8 files of 16 MiB out.  This
script makes those minutes count:

- **data on the chip**: the photos (``tools/make_gpu_data.py``) and copies of
  them downscaled by 0.85 / 0.7 / 0.55 are one flat uint8 tensor on the GPU;
  a batch of random crops with random flips and transposes is one gather, no
  host work, no synchronisation;
- **a self-tune** (about 70 s, compiling included) that times each mode on
  the same batches and checks its loss against float32's on the first
  (refused beyond ``--tolerance``, 1 %); the fastest good one trains:
  ``bf16`` runs the transforms under bfloat16 autocast in ``channels_last``
  (the first analysis and last synthesis layer, GDN's normalisation, the
  codes, the entropy model, the likelihoods and the rate in float32),
  ``bf16-compile`` the same through ``torch.compile``, ``bf16-graphs`` its
  "reduce-overhead" mode (CUDA graphs); ``fp32`` (eager, TF32: the old
  loop's arithmetic) is the fallback.  Measured on the H200 at batch 64:
  bf16-graphs 208 Mpx/s, bf16-compile 201; at batch 32: bf16-compile 100,
  fp32 60, bf16 56 (docs/training.md);
- **no host synchronisation in the loop**: statistics accumulate on the GPU
  and are read once a minute; anchor balancing is tensor arithmetic;
- **weights back every minute**: one ``NAME.npz`` (kernels as float16, the
  rest float32; the shipped weights are float16 values anyway) with the
  run's facts in its ``meta`` entry, written atomically, and ``NAME.log``;
- **runs that accumulate**: ``--from`` takes the last slot's ``NAME.npz`` or
  a folder of ``.npz`` groups (``../shared/weights/channel-context-gpu``, an
  ``export_torch_npz`` of a shipped model); the optimizer state does not
  travel (80 MB), so each slot warms Adam up again (``--warmup-steps``) and
  follows its own cosine from ``--lr`` to ``--lr-min``; every slot draws
  new crops (a fresh seed unless ``--seed``).

Architectures (``--arch``):

- ``channel-context``: the shipped default's mirror
  (``tools/gpu_train_channel_context.py``), nine rate anchors;
- ``shallow``: the channel-context entropy model and analysis with a
  two-layer synthesis (Yang & Mandt, ICCV 2023): a 13x13 transposed
  convolution up by 8 to 12 channels with an inverse GDN plus a linear
  residual branch of the same shape, then a 5x5 one up by 2 to RGB: about
  3.3k MAC per pixel against the default's 37k.  From a channel-context
  start it keeps the analysis, hyperprior, contexts and inverse gains, and
  the synthesis starts from random weights (learning rate x ``--new-lr-mult``).

Prepare on the CPU machine (docs/training.md has the whole recipe)::

    python tools/make_gpu_data.py --photos ../shared/data/photos --out gpu/photos --budget-mb 40
    cp ../shared/weights/channel-context-gpu/*.npz gpu/start-cc/      # or the last slot's NAME.npz
    git rm -r -q --cached cae_compress/pretrained && echo /cae_compress/pretrained/ >> .git/info/exclude   # 57 MB that the GPU does not need
    # after the call: git reset -q -- cae_compress/pretrained and delete that line of .git/info/exclude

and the device tool's ``run`` with ``carry=["gpu/photos", "gpu/start-cc"]`` and ``timeout_s=590``::

    export CAE_COMMIT=<short commit> PYTHONUNBUFFERED=1
    python3 tools/gpu_slot.py --arch channel-context --from gpu/start-cc --photos gpu/photos --out $OUT --name cc --minutes 8.8 --lr 2e-4 > $OUT/cc.out 2>&1 &
    sleep 5; python3 tools/gpu_slot.py --arch shallow --from gpu/start-cc --photos gpu/photos --out $OUT --name shallow --minutes 8.7 \
        --lr 2e-4 --new-lr-mult 5 --fresh-steps 3000 --after $OUT/cc.log > $OUT/shallow.out 2>&1 &
    wait

(two architectures share the chip; the second waits, ``--after``, until
the first's log says its self-tune is done, so that the first's timings
are its own).  Back here: ``python tools/import_gpu_run.py
/work/.device/N/cc.npz`` builds, exports, evaluates and writes the ledger
line (docs/training.md has the whole recipe).

On the CPU the same code paths run in ``tests/test_gpu_slot.py`` (two steps
a mode, compile and autocast included).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("fp32", "bf16", "bf16-compile", "bf16-graphs")  # bf16-graphs: torch.compile's "reduce-overhead" (CUDA graphs)
TRANSFER_LIMIT = 16 * 2**20  # the largest file that comes back from the lent machine
SCALES = (0.85, 0.7, 0.55)  # downscaled copies of the photos (the crops' "zoom out")
DOWNSCALED_SHARE = 0.3  # of the crops, as in gpu_train_hyperprior.crop_pool


def _torch():
    import torch

    return torch


# --------------------------------------------------------------------- architectures
def _hp():
    sys.path.insert(0, HERE)
    import gpu_train_hyperprior as hp

    return hp


def _cc():
    sys.path.insert(0, HERE)
    import gpu_train_channel_context as cc

    return cc


def shallow_class():
    """The ``shallow`` architecture's mirror: the channel-context model with a two-layer synthesis."""
    torch = _torch()
    nn = torch.nn
    hp, cc = _hp(), _cc()

    class TwoLayerSynthesis(nn.Module):
        """out(igdn(base(y)) + res(y)): ConvT 13x13 /8 to ``hidden`` channels (non-linear and linear branches), ConvT 5x5 /2 to RGB."""

        def __init__(self, m: int = hp.M, hidden: int = 12, k1: int = 13, s1: int = 8, k2: int = 5, s2: int = 2):
            super().__init__()
            self.base = hp.Deconv(m, hidden, k1, s1)
            self.igdn = hp.GDN(hidden, inverse=True)
            self.res = hp.Deconv(m, hidden, k1, s1)
            self.out = hp.Deconv(hidden, 3, k2, s2)

        def forward(self, y):
            hidden = self.igdn(self.base(y)) + self.res(y)
            with torch.autocast(y.device.type, enabled=False):  # the pixels out in float32 (Hyperprior.transform's exact_last)
                return self.out(hidden.float())

    class Shallow(cc.model_class()):
        def __init__(self):
            super().__init__()
            self.g_s = nn.ModuleList([TwoLayerSynthesis()])

        def export_synthesis(self) -> dict:
            s = self.g_s[0]
            out = {}
            for name in ("base", "res", "out"):
                out[f"{name}/kernel"] = hp._tf_deconv(getattr(s, name).conv)
                out[f"{name}/bias"] = getattr(s, name).conv.bias.detach().cpu().numpy()
            out["igdn/beta"] = s.igdn.beta.detach().cpu().numpy()
            out["igdn/gamma"] = s.igdn.gamma.detach().cpu().numpy()
            out["inverse_gain"] = self.inverse_gain.detach().cpu().numpy()
            return out

        def init_fresh_synthesis(self) -> None:
            """A new synthesis that starts near mid-grey (its output layer scaled down, bias 0.5): small first gradients."""
            with torch.no_grad():
                self.g_s[0].out.conv.weight.mul_(0.1)
                self.g_s[0].out.conv.bias.fill_(0.5)

        def import_synthesis(self, arrays: dict) -> bool:
            """The two-layer synthesis from ``synthesis/...`` arrays, if they are one (True); else only the inverse gains."""
            s = self.g_s[0]
            with torch.no_grad():
                if "synthesis/inverse_gain" in arrays and arrays["synthesis/inverse_gain"].shape == tuple(self.inverse_gain.shape):
                    self.inverse_gain.copy_(torch.from_numpy(arrays["synthesis/inverse_gain"].astype(np.float32)))
                if "synthesis/base/kernel" not in arrays:
                    return False
                for name in ("base", "res", "out"):
                    conv = getattr(s, name).conv
                    conv.weight.copy_(torch.from_numpy(arrays[f"synthesis/{name}/kernel"].astype(np.float32).transpose(3, 2, 0, 1).copy()))
                    conv.bias.copy_(torch.from_numpy(arrays[f"synthesis/{name}/bias"].astype(np.float32)))
                s.igdn.beta.copy_(torch.from_numpy(arrays["synthesis/igdn/beta"].astype(np.float32)))
                s.igdn.gamma.copy_(torch.from_numpy(arrays["synthesis/igdn/gamma"].astype(np.float32)))
            return True

    return Shallow


def synthesis_macs_per_pixel(model, size: int = 256) -> float:
    """Multiply-accumulates per output pixel of ``model.g_s`` (convolutions and GDNs), counted on a ``size`` crop."""
    torch = _torch()
    hp = _hp()
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.ConvTranspose2d):
            cin, cout, kh, kw = mod.weight.shape
            total += inp[0].shape[2] * inp[0].shape[3] * cin * cout * kh * kw
        elif isinstance(mod, torch.nn.Conv2d):
            cout, cin, kh, kw = mod.weight.shape
            total += out.shape[2] * out.shape[3] * cin * cout * kh * kw
        elif isinstance(mod, hp.GDN):
            c = mod.beta.shape[0]
            total += out.shape[2] * out.shape[3] * c * c

    hooks = [m.register_forward_hook(hook) for m in model.g_s.modules()]
    try:
        with torch.no_grad():
            y = torch.zeros(1, hp.M, size // 16, size // 16)
            model.transform(model.g_s, y)
    finally:
        for h in hooks:
            h.remove()
    return total / size**2


def read_weights(source: str) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays by ``GROUP/KEY`` and the run's facts, from a slot's packed ``.npz`` or a folder of ``GROUP.npz`` files."""
    if os.path.isdir(source):
        arrays = {}
        for name in sorted(os.listdir(source)):
            if name.endswith(".npz") and not name.endswith(".part.npz"):
                with np.load(os.path.join(source, name)) as f:
                    arrays.update({f"{name[:-4]}/{k}": f[k] for k in f.files})
        meta = {}
    else:
        with np.load(source) as f:
            arrays = {k: f[k] for k in f.files if k != "meta"}
            meta = json.loads(str(f["meta"])) if "meta" in f.files else {}
    if "analysis/gain" not in arrays:
        raise SystemExit(f"{source}: no weights of the mirror's layout (analysis/gain missing)")
    return arrays, meta


def build(arch: str, arrays: dict, device):
    """The mirror of ``arch`` with ``arrays`` loaded (a hyperprior start warm-starts the contexts), its anchors' lambdas, and the parameters that start fresh."""
    torch = _torch()
    hp, cc = _hp(), _cc()
    lambdas = tuple(hp.LAMBDAS) + tuple(cc.TOP_LAMBDAS)
    model = shallow_class()() if arch == "shallow" else cc.model_class()()
    anchors = arrays["analysis/gain"].shape[0]
    if anchors not in (len(hp.LAMBDAS), len(lambdas)):
        raise SystemExit(f"the start has {anchors} rate anchors; the slot trains {len(lambdas)}")
    model.extend_anchors(anchors - len(hp.LAMBDAS))
    fresh = []
    if arch == "shallow":
        hp.import_weights(model, arrays, groups=("analysis", "hyper_analysis", "hyper_synthesis"))
        if not model.import_synthesis(arrays):
            model.init_fresh_synthesis()
            fresh = list(model.g_s.parameters())
    else:
        hp.import_weights(model, arrays)
    if not cc.load_contexts_into(model, arrays):
        model.warm_start()
    model.extend_anchors(len(lambdas) - anchors)
    return model.to(device), lambdas, fresh


def export(model, lambdas) -> dict[str, np.ndarray]:
    """The weights as one flat dict by ``GROUP/KEY``: kernels as float16, the rest float32."""
    groups = _cc().export_groups(model, lambdas)
    out = {}
    for g, arrays in groups.items():
        for k, v in arrays.items():
            if v.dtype.kind == "f" and v.ndim == 4:
                v = v.astype(np.float16)
            elif v.dtype.kind == "f" and k != "lambdas":
                v = v.astype(np.float32)
            out[f"{g}/{k}"] = v
    return out


def save(path: str, arrays: dict, meta: dict) -> int:
    """``arrays`` and ``meta`` to ``path`` atomically; its size in bytes (refused over the transfer limit)."""
    tmp = path[:-4] + ".part.npz"
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    size = os.path.getsize(tmp)
    if size > TRANSFER_LIMIT:
        os.remove(tmp)
        raise SystemExit(f"{path}: {size / 2**20:.1f} MiB is over the {TRANSFER_LIMIT / 2**20:.0f} MiB that comes back")
    os.replace(tmp, path)
    return size


# ------------------------------------------------------------------------------ data
class Crops:
    """Random square crops of the photos, made on the device: one gather per batch.

    The photos and their copies downscaled by ``SCALES`` (bicubic, antialiased,
    those whose short side still holds a crop) lie in one flat uint8 tensor;
    a batch picks sources (originals and downscaled copies in the shares of
    ``gpu_train_hyperprior.crop_pool``, by area), places, flips and
    transposes, all as tensor arithmetic.
    """

    def __init__(self, images: list, size: int, device, seed: int):
        torch = _torch()
        F = torch.nn.functional
        self.size, self.device = size, device
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        sources, shares = [], []
        originals = [im.to(device) for im in images if min(im.shape[1:]) >= size]
        if not originals:
            raise SystemExit(f"no photo holds a {size}-pixel crop")
        down = []
        for s in SCALES:
            for im in originals:
                h, w = (round(v * s) for v in im.shape[1:])
                if min(h, w) >= size:
                    d = F.interpolate(im[None].float(), size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0]
                    down.append(d.round().clamp(0, 255).to(torch.uint8))
        for group, share in ((originals, 1.0 - DOWNSCALED_SHARE if down else 1.0), (down, DOWNSCALED_SHARE)):
            area = sum(im.shape[1] * im.shape[2] for im in group)
            for im in group:
                sources.append(im)
                shares.append(share * im.shape[1] * im.shape[2] / area)
        self.buffer = torch.cat([im.reshape(-1) for im in sources]).to(device)
        sizes = [im.numel() for im in sources]
        self.offset = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.int64, device=device)
        self.h = torch.tensor([im.shape[1] for im in sources], dtype=torch.int64, device=device)
        self.w = torch.tensor([im.shape[2] for im in sources], dtype=torch.int64, device=device)
        self.weights = torch.tensor(shares, dtype=torch.float32, device=device)
        self.count = (len(originals), len(down))
        self.pixels = int(sum(im.shape[1] * im.shape[2] for im in originals))

    def __call__(self, batch: int):
        """(batch, 3, size, size) uint8 crops."""
        torch = _torch()
        S, g, dev = self.size, self.gen, self.device
        i = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        h, w, off = self.h[i], self.w[i], self.offset[i]
        y0 = (torch.rand(batch, generator=g, device=dev) * (h - S + 1).float()).long().clamp_max(h - S)
        x0 = (torch.rand(batch, generator=g, device=dev) * (w - S + 1).float()).long().clamp_max(w - S)
        r = torch.arange(S, device=dev)
        flips = torch.rand(batch, 3, generator=g, device=dev) < 0.5
        rows = torch.where(flips[:, :1], S - 1 - r, r)[:, :, None].expand(batch, S, S)
        cols = torch.where(flips[:, 1:2], S - 1 - r, r)[:, None, :].expand(batch, S, S)
        t = flips[:, 2, None, None]
        rows, cols = torch.where(t, cols, rows), torch.where(t, rows, cols)
        c = torch.arange(3, device=dev)[None, :, None, None]
        b = (slice(None), None, None, None)
        idx = off[b] + c * (h * w)[b] + (y0[b] + rows[:, None]) * w[b] + x0[b] + cols[:, None]
        return self.buffer[idx]


def load_photos(folder: str) -> list:
    """The photos as uint8 (3, H, W) tensors on the CPU (``Crops`` moves them)."""
    return _hp().load_photos(folder, "cpu")


# --------------------------------------------------------------------------- training
class Trainer:
    """One mode's training step on a model: the loss (compiled or not, autocast or not), Adam, clipping, anchor balance."""

    def __init__(self, model, mode: str, lambdas, fresh, lr_mult: float, device, compile_backend: str = "inductor"):
        torch = _torch()
        self.torch, self.model, self.mode, self.device = torch, model, mode, device
        self.lambdas = torch.tensor(lambdas, device=device)
        model.amp_dtype = torch.bfloat16 if mode.startswith("bf16") else None
        self.channels_last = mode.startswith("bf16")
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        fresh_ids = {id(p) for p in fresh}
        groups = [{"params": [p for p in model.parameters() if id(p) not in fresh_ids], "mult": 1.0}]
        if fresh:
            groups.append({"params": list(fresh), "mult": lr_mult})
        fused = device.type == "cuda"
        self.opt = torch.optim.Adam(groups, lr=1e-4, fused=fused) if fused else torch.optim.Adam(groups, lr=1e-4, foreach=True)
        self.params = list(model.parameters())
        self.balance = _hp().AnchorBalance(len(lambdas), device)
        if mode.endswith("compile") or mode.endswith("graphs"):
            graphs = mode.endswith("graphs") and compile_backend == "inductor"  # other backends (the CPU test's) take no mode
            self.loss = torch.compile(self._loss, mode="reduce-overhead") if graphs else torch.compile(self._loss, backend=compile_backend)
        else:
            self.loss = self._loss

    def _loss(self, x, level):
        x_hat, bits_y, bits_z = self.model(x, level)
        mse = ((x - x_hat) ** 2).mean(dim=(1, 2, 3))
        bpp = (bits_y + bits_z) / (x.shape[2] * x.shape[3])
        return self.lambdas[level] * 255.0**2 * mse + bpp, mse, bpp

    def prepare(self, crops):
        x = crops.float().div_(255.0)
        return x.contiguous(memory_format=self.torch.channels_last) if self.channels_last else x

    def step(self, x, level, lr: float, fresh_only: bool = False):
        """One step; (per-image loss, MSE, bpp), detached, on the device: nothing here waits for the GPU.

        ``fresh_only``: only the weights that started fresh move (the rest at learning rate 0).
        """
        for g in self.opt.param_groups:
            g["lr"] = lr * g["mult"] * (0.0 if fresh_only and g["mult"] == 1.0 and len(self.opt.param_groups) > 1 else 1.0)
        per_image, mse, bpp = self.loss(x, level)
        weight = self.balance(level, per_image.detach())
        self.opt.zero_grad(set_to_none=True)
        (per_image / weight).mean().backward()
        self.torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
        self.opt.step()
        return per_image.detach(), mse.detach(), bpp.detach()


def _sync(device):
    torch = _torch()
    if device.type == "cuda":
        torch.cuda.synchronize()


def self_tune(model, lambdas, fresh, args, batches, device, log) -> tuple[Trainer, list[dict], int]:
    """Time each mode on the same batches and check its loss against float32's; the fastest good mode's trainer, the report, its steps."""
    torch = _torch()
    report, best = [], None
    x0, l0 = batches[0]
    ref = Trainer(copy.deepcopy(model), "fp32", lambdas, [], 1.0, device)
    torch.manual_seed(args.seed)
    reference = float(ref.loss(ref.prepare(x0), l0)[0].mean().detach())  # float32's loss on the tune batch: what every mode is checked against
    del ref
    for mode in args.modes:
        t0 = time.time()
        entry = {"mode": mode}
        if best is not None and t0 > getattr(args, "tune_until", float("inf")):  # the slot's time goes to training, not to trying another mode
            entry.update(ok=False, error="skipped: the tune's share of the slot is spent")
            report.append(entry)
            log("tune " + json.dumps(entry))
            continue
        try:
            m = copy.deepcopy(model)
            trainer = Trainer(m, mode, lambdas, fresh=[p for p, q in zip(m.parameters(), model.parameters()) if any(q is f for f in fresh)],
                              lr_mult=args.new_lr_mult, device=device, compile_backend=args.compile_backend)
            torch.manual_seed(args.seed)
            loss = float(trainer.loss(trainer.prepare(x0), l0)[0].mean().detach())  # with gradients: the graph the training compiles
            entry["loss"] = loss
            entry["loss_vs_fp32"] = loss / reference - 1
            lr = args.lr * 1e-3  # tune steps train for real, gently
            for x, lv in batches[:2]:  # warm-up (compiles here)
                trainer.step(trainer.prepare(x), lv, lr)
            _sync(device)
            entry["compile_s"] = round(time.time() - t0, 1)
            steps, t1 = 0, time.time()
            while True:
                x, lv = batches[steps % len(batches)]
                trainer.step(trainer.prepare(x), lv, lr)
                steps += 1
                if steps >= args.tune_steps:
                    _sync(device)
                    if time.time() - t1 >= args.tune_seconds:
                        break
            dt_s = time.time() - t1
            entry["steps_per_s"] = steps / dt_s
            entry["mpx_per_s"] = steps * args.batch * args.crop**2 / dt_s / 1e6
            entry["ok"] = abs(entry["loss_vs_fp32"]) <= args.tolerance
            entry["steps"] = steps + 2
            if not math.isfinite(loss):
                entry["ok"] = False
        except Exception as e:  # a mode that fails here is skipped, never the slot
            entry.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            trainer = None
        entry["seconds"] = round(time.time() - t0, 1)
        report.append(entry)
        log("tune " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()}))
        if entry.get("ok") and (best is None or entry["mpx_per_s"] > best[1]["mpx_per_s"]):
            best = (trainer, entry)
    if best is None and args.fallback and args.fallback not in args.modes:
        log(f"no mode of {','.join(args.modes)} trains: the fallback {args.fallback}")
        fallback = argparse.Namespace(**{**vars(args), "modes": [args.fallback], "fallback": None})
        trainer, more, steps = self_tune(model, lambdas, fresh, fallback, batches, device, log)
        return trainer, report + more, steps
    if best is None:
        raise SystemExit("no mode trained: " + "; ".join(f"{e['mode']}: {e.get('error', 'loss off')}" for e in report))
    return best[0], report, best[1]["steps"]


def lr_at(args, step: int, progress: float) -> float:
    """Linear warm-up over ``--warmup-steps`` (Adam's state does not travel), then a cosine from ``--lr`` to ``--lr-min``.

    With weights that start fresh, the rest warms up again after ``--fresh-steps``.
    """
    since = step - args.fresh_steps if args.fresh and step >= args.fresh_steps else step
    warm = min(1.0, (since + 1) / max(args.warmup_steps, 1))
    return warm * _hp().cosine_lr(args.lr, args.lr_min, min(max(progress, 0.0), 1.0))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", choices=("channel-context", "shallow"), default="channel-context")
    p.add_argument("--from", dest="start", required=True, help="a slot's NAME.npz, or a folder of the mirror's .npz groups")
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True, help="$OUT on the lent machine")
    p.add_argument("--name", default=None, help="the files' stem in --out (default: the architecture)")
    p.add_argument("--minutes", type=float, default=9.0, help="wall time of the whole command, loading and tuning included")
    p.add_argument("--batch", type=int, default=64, help="crops a step (64 on the H200: the loop is launch-bound below that)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--new-lr-mult", type=float, default=10.0, help="learning-rate factor for weights that start fresh (a new synthesis)")
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--fresh-steps", type=int, default=2000, help="where some weights start fresh: only they train for this many steps")
    p.add_argument("--modes", default="bf16-graphs,bf16-compile",
                   help=f"the modes the self-tune times, in this order, each checked against float32's loss (known: {', '.join(MODES)}); "
                        "on the H200 at batch 64: bf16-graphs 208 Mpx/s, bf16-compile 201; at batch 32: bf16-compile 100, fp32 60, bf16 56")
    p.add_argument("--tolerance", type=float, default=0.01, help="a mode's loss on the tune batch may differ from float32's by this much (relative)")
    p.add_argument("--fallback", default="fp32", help="the mode that trains when no mode of --modes does (tried only then)")
    p.add_argument("--tune-seconds", type=float, default=4.0, help="timed seconds a mode (after its warm-up)")
    p.add_argument("--tune-share", type=float, default=0.35, help="no further mode is tried once this share of --minutes has passed")
    p.add_argument("--tune-steps", type=int, default=10, help="at least this many timed steps a mode")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile's backend (the CPU test uses aot_eager: the same graph capture without inductor's 2-minute C++ build)")
    p.add_argument("--save-every", type=float, default=60.0)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--seed", type=int, default=None, help="default: a fresh one (each slot sees new crops)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--after", default=None, help="wait until this file has a line starting 'train ' (the other run's self-tune done) before tuning")
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in [*args.modes, args.fallback] if m not in MODES]
    if bad:
        p.error(f"unknown modes {bad}; known: {', '.join(MODES)}")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little") % 2**31
    name = args.name or args.arch
    t_start = time.time()
    deadline = t_start + args.minutes * 60
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, f"{name}.log")

    def log(line: str) -> None:
        line = f"[{time.time() - t_start:6.1f}s] {line}"
        print(f"{name} {line}", flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    torch = _torch()
    dev = _hp().device(args.device, args.seed)
    machine = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    log(f"{args.arch} from {args.start} on {machine}, torch {torch.__version__}, seed {args.seed}, batch {args.batch} of {args.crop}")
    arrays, start_meta = read_weights(args.start)
    model, lambdas, fresh = build(args.arch, arrays, dev)
    args.fresh = bool(fresh)
    macs = synthesis_macs_per_pixel(copy.deepcopy(model).cpu())
    crops = Crops(load_photos(args.photos), args.crop, dev, args.seed)
    log(f"{crops.count[0]} photos ({crops.pixels / 1e6:.1f} Mpx) and {crops.count[1]} downscaled copies on the device; "
        f"synthesis {macs / 1e3:.1f}k MAC/px; {len(fresh)} tensors start fresh")
    if args.after:
        while time.time() < min(deadline - 60, t_start + 240):  # at most 4 minutes: the other run may have failed
            if os.path.exists(args.after) and any(line.split("] ", 1)[-1].startswith("train ") for line in open(args.after)):
                break
            time.sleep(1)
        log(f"{args.after} has finished its self-tune")

    gen_level = torch.Generator(device=dev)
    gen_level.manual_seed(args.seed + 1)

    def batch():
        return crops(args.batch), torch.randint(0, len(lambdas), (args.batch,), generator=gen_level, device=dev)

    args.tune_until = t_start + args.tune_share * args.minutes * 60
    tune_batches = [batch() for _ in range(4)]
    trainer, report, step = self_tune(model, lambdas, fresh, args, tune_batches, dev, log)
    chosen = next(e for e in report if e["mode"] == trainer.mode)
    log(f"train with {trainer.mode} ({chosen['mpx_per_s']:.1f} Mpx/s in the tune)")
    same = start_meta.get("arch") == args.arch  # a run that goes on where the last one of its architecture stopped
    prior_steps = int(start_meta.get("total_steps", 0)) if same else 0
    prior_minutes = float(start_meta.get("total_minutes", 0.0)) if same else 0.0
    A = len(lambdas)
    sums = torch.zeros(3, A, device=dev)  # per anchor: MSE, bpp, count since the last log
    t_train = time.time()
    train_s = max(deadline - t_train - 15, 1.0)
    last_log = last_save = t_train
    log_step = step
    meta = {}

    def write(final: bool = False) -> None:
        nonlocal meta
        el = time.time() - t_train
        meta = {"arch": args.arch, "from": os.path.basename(os.path.normpath(args.start)), "machine": machine, "torch": torch.__version__,
                "commit": os.environ.get("CAE_COMMIT") or _commit(), "date": dt.date.today().isoformat(), "mode": trainer.mode, "batch": args.batch, "crop": args.crop,
                "lr": args.lr, "lr_min": args.lr_min, "seed": args.seed, "steps": step, "train_minutes": round(el / 60, 2),
                "mpx_per_s": round((step - report_steps) * args.batch * args.crop**2 / max(el, 1e-9) / 1e6, 1),
                "total_steps": prior_steps + step, "total_minutes": round(prior_minutes + el / 60, 2),
                "lambdas": list(lambdas), "synthesis_macs_per_px": round(macs), "tune": report, "final": final}
        size = save(os.path.join(args.out, f"{name}.npz"), export(trainer.model, lambdas), meta)
        log(f"saved {name}.npz ({size / 2**20:.1f} MiB) at step {step}")

    report_steps = step
    while time.time() < t_train + train_s and (not args.max_steps or step < args.max_steps):
        x, level = batch()
        lr = lr_at(args, step, (time.time() - t_train) / train_s)
        _, mse, bpp = trainer.step(trainer.prepare(x), level, lr, fresh_only=step < args.fresh_steps)
        sums.index_add_(1, level, torch.stack([mse, bpp, torch.ones_like(mse)]))
        step += 1
        now = time.time()
        if now - last_log >= 60 or (args.max_steps and step == args.max_steps):
            s = sums.cpu().numpy().copy()  # the one synchronisation a minute (a copy: on the CPU .cpu() is the same tensor)
            sums.zero_()
            if not np.all(np.isfinite(s)):
                write()
                raise SystemExit("loss is not finite")
            parts = [f"q{k} {10 * math.log10(1 / max(s[0, k] / s[2, k], 1e-10)):.2f}dB {s[1, k] / s[2, k]:.3f}bpp" for k in range(A) if s[2, k]]
            rate = (step - log_step) * args.batch * args.crop**2 / max(now - last_log, 1e-9) / 1e6
            log(f"train step {step} {(now - t_train) / 60:.1f} min lr {lr:.2e} {rate:.1f} Mpx/s | " + " | ".join(parts))
            last_log, log_step = now, step
        if now - last_save >= args.save_every:
            write()
            last_save = time.time()
    _sync(dev)
    write(final=True)
    log(f"done: {step} steps in {(time.time() - t_train) / 60:.2f} min of training, {meta['mpx_per_s']} Mpx/s with {trainer.mode}")


if __name__ == "__main__":
    main()
