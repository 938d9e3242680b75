"""Train the ``hyperprior`` model on a GPU with PyTorch, and export its weights for Keras.

The lent GPU machines have PyTorch and no TensorFlow, and a CPU with two
cores trains this model about a hundred times slower, so the first stage of
the shipped ``hyperprior`` model was trained by this script.  It is a mirror
of ``cae_compress.models.hyperprior`` (same layers, same padding, same
parametrization of GDN and of the factorized prior, same loss), written for
PyTorch; ``python -m cae_compress.models.hyperprior_import`` (see
``cae_compress.models.hyperprior.load_torch_export``) loads the exported
``.npz`` files into the Keras model, and ``tests`` check that the two compute
the same function.  Later stages train with ``cae train --init-from``.

Usage (on the GPU machine, photos in a folder of JPEGs)::

    python tools/gpu_train_hyperprior.py --photos DIR --out DIR --ckpt FILE --minutes 8 [--total-minutes 25]

The learning rate follows a cosine over ``--total-minutes`` of training, so
that a run split over several calls of a few minutes each keeps one schedule.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N, M, S = 128, 192, 96  # transform width, code channels, width of the hyper-synthesis scale branch
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)  # rate anchors (CompressAI's MSE lambdas)
SCALE_MIN, SCALE_MAX = 0.11, 256.0


# ---------------------------------------------------------------- TF-'same' layers
def _same_pad(n, k, s):
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Conv(nn.Module):
    """Conv2D with TensorFlow's 'same' padding (more on the bottom/right when odd)."""

    def __init__(self, cin, cout, k, s):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(cin, cout, k, s)

    def forward(self, x):
        ph, pw = _same_pad(x.shape[-2], self.k, self.s), _same_pad(x.shape[-1], self.k, self.s)
        return self.conv(F.pad(x, (*pw, *ph)))


class Deconv(nn.Module):
    """Conv2DTranspose with TensorFlow's 'same' padding: output = input * stride."""

    def __init__(self, cin, cout, k, s):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.ConvTranspose2d(cin, cout, k, s)

    def forward(self, x):
        h, w = x.shape[-2:]
        y = self.conv(x)
        a = (self.k - self.s) // 2
        return y[..., a : a + h * self.s, a : a + w * self.s]


class GDN(nn.Module):
    """x / sqrt(beta + gamma . x^2) with beta = b^2 + 1e-6, gamma = g^2, as cae_compress.models.layers.GDN."""

    def __init__(self, c, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(c))
        # off-diagonal entries start small but not zero: gamma = g^2 has no gradient at g = 0
        self.gamma = nn.Parameter(torch.sqrt(0.01 * torch.eye(c) + 1e-5 * (1 - torch.eye(c))))

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):  # the normalisation in float32 under bfloat16 autocast
            x = x.float()
            beta = self.beta**2 + 1e-6
            gamma = self.gamma**2  # gamma[i, j]: weight of x_i^2 in the norm of channel j
            norm = torch.sqrt(F.conv2d(x * x, gamma.t()[:, :, None, None], beta))
            return x * norm if self.inverse else x / norm


class FactorizedPrior(nn.Module):
    """Per-channel monotone CDF network (Ballé et al. 2018), as cae_compress.entropy_models.FactorizedPrior."""

    def __init__(self, c, filters=(3, 3, 3), init_scale=10.0):
        super().__init__()
        widths = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((c, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(c, widths[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(c, widths[i + 1], 1)))

    def logits_cdf(self, v):
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            v = torch.matmul(F.softplus(m), v) + b
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v

    def forward(self, z):  # z: (B, C, H, W) -> likelihood of each value (float32, also under autocast)
        with torch.autocast(z.device.type, enabled=False):
            return self._likelihood(z.float())

    def _likelihood(self, z):
        b, c, h, w = z.shape
        rows = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cdf(rows - 0.5)
        upper = self.logits_cdf(rows + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lik.clamp_min(1e-9).reshape(c, b, h, w).permute(1, 0, 2, 3)


def gaussian_likelihood(y, mean, scale):
    """The probability of the unit bin around ``y`` under N(mean, scale), in float32 (also under bfloat16 autocast)."""
    with torch.autocast(y.device.type, enabled=False):
        return _gaussian_likelihood(y.float(), mean.float(), scale.float())


def _gaussian_likelihood(y, mean, scale):
    v = torch.abs(y - mean)
    upper = 0.5 * torch.erfc(-(0.5 - v) / (scale * math.sqrt(2)))
    lower = 0.5 * torch.erfc(-(-0.5 - v) / (scale * math.sqrt(2)))
    return (upper - lower).clamp_min(1e-9)


def ste_round(x):
    return x + (torch.round(x) - x).detach()


class Hyperprior(nn.Module):
    def __init__(self):
        super().__init__()
        self.g_a = nn.ModuleList([Conv(3, N, 5, 2), GDN(N), Conv(N, N, 5, 2), GDN(N), Conv(N, N, 5, 2), GDN(N), Conv(N, M, 5, 2)])
        self.g_s = nn.ModuleList(
            [Deconv(M, N, 5, 2), GDN(N, True), Deconv(N, N, 5, 2), GDN(N, True), Deconv(N, N, 5, 2), GDN(N, True), Deconv(N, 3, 5, 2)]
        )
        self.h_a = nn.ModuleList([Conv(M, N, 3, 1), Conv(N, N, 5, 2), Conv(N, N, 5, 2)])
        self.h_mean = nn.ModuleList([Deconv(N, M, 5, 2), Deconv(M, M, 5, 2), Conv(M, M, 3, 1)])
        self.h_scale = nn.ModuleList([Deconv(N, S, 5, 2), Deconv(S, S, 5, 2), Conv(S, M, 1, 1)])
        self.prior = FactorizedPrior(N)
        k = len(LAMBDAS)
        self.gain = nn.Parameter(torch.zeros(k, M))  # log of the encoder's per-channel gain, per rate anchor
        self.inverse_gain = nn.Parameter(torch.zeros(k, M))

    @staticmethod
    def _chain(layers, x, act):
        for i, layer in enumerate(layers):
            x = layer(x)
            if i < len(layers) - 1 and act is not None:
                x = act(x)
        return x

    rounded_rates = False  # True: the bits of the rounded codes (what a file costs), not of the noisy ones (training)
    amp_dtype = None  # bfloat16: the transforms g_a and g_s under autocast (GDN's normalisation in float32); codes, entropy model and rate in float32

    def transform(self, layers, x, exact_first: bool = False, exact_last: bool = False):
        """``layers`` applied to ``x``: under autocast to ``amp_dtype`` when set; a float32 result either way.

        ``exact_first``/``exact_last``: that layer in float32 even so (the pixels in, the pixels out: bfloat16's
        8-bit mantissa rounds a pixel by up to 1/256, as much as the distortion at the top anchors).
        """
        amp = self.amp_dtype is not None
        for i, layer in enumerate(layers):
            exact = (exact_first and i == 0) or (exact_last and i == len(layers) - 1)
            with torch.autocast(x.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=amp and not exact):
                x = layer(x.float() if exact else x)
        return x.float()

    def analyse(self, x, level):
        """The gained codes y, and the hyper-codes rounded (straight-through) and with noise, of x in [0, 1] at anchors ``level``."""
        y = self.transform(self.g_a, x, exact_first=True)
        y = y * torch.exp(self.gain[level])[:, :, None, None]
        z = self._chain(self.h_a, y, lambda t: F.leaky_relu(t, 0.01))
        z_hat = ste_round(z)
        return y, z_hat, z_hat if self.rounded_rates else z + torch.empty_like(z).uniform_(-0.5, 0.5)

    def export_synthesis(self) -> dict[str, np.ndarray]:
        """``synthesis.npz``'s arrays (an architecture with another synthesis overrides this)."""
        return export_synthesis(self.g_s, self.inverse_gain)

    def synthesise(self, y_hat, level):
        x_hat = y_hat * torch.exp(self.inverse_gain[level])[:, :, None, None]
        return self.transform(self.g_s, x_hat, exact_last=True)

    def forward(self, x, level):
        """x in [0, 1] (B, 3, H, W); level: (B,) anchor indices.  Returns x_hat, bits of y, bits of z."""
        y_hat, bits_y, bits_z = self.code(x, level)
        return self.synthesise(y_hat, level), bits_y, bits_z

    def code(self, x, level):
        """The decoded codes ``y_hat`` (gained, rounded straight-through), the bits of y (noisy) and of z."""
        y, z_hat, z_noisy = self.analyse(x, level)
        mean = self._chain(self.h_mean, z_hat, lambda t: F.leaky_relu(t, 0.01))
        log_scale = self._chain(self.h_scale, z_hat, F.relu)
        scale = torch.exp(log_scale.clamp(math.log(SCALE_MIN), math.log(SCALE_MAX)))
        y_hat = ste_round(y - mean) + mean
        y_noisy = y_hat if self.rounded_rates else y + torch.empty_like(y).uniform_(-0.5, 0.5)
        bits_y = -torch.log2(gaussian_likelihood(y_noisy, mean, scale)).sum(dim=(1, 2, 3))
        bits_z = -torch.log2(self.prior(z_noisy)).sum(dim=(1, 2, 3))
        return y_hat, bits_y, bits_z


# ------------------------------------------------------------------------ export
def _tf_conv(conv):
    return conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def _tf_deconv(conv):
    return conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)  # (in, out, kh, kw) -> (kh, kw, out, in)


def export_weights(model: Hyperprior) -> dict[str, dict[str, np.ndarray]]:
    """Weights by Keras layer path, in Keras layouts, grouped into files of under 16 MB."""
    groups = {"analysis": {}, "synthesis": {}, "hyper_analysis": {}, "hyper_synthesis": {}}

    def put(group, name, layer, deconv=False):
        groups[group][f"{name}/kernel"] = _tf_deconv(layer.conv) if deconv else _tf_conv(layer.conv)
        groups[group][f"{name}/bias"] = layer.conv.bias.detach().cpu().numpy()

    def put_gdn(group, name, gdn):
        groups[group][f"{name}/beta"] = gdn.beta.detach().cpu().numpy()
        groups[group][f"{name}/gamma"] = gdn.gamma.detach().cpu().numpy()

    for i in range(4):
        put("analysis", f"conv_{i}", model.g_a[2 * i])
        if i < 3:
            put_gdn("analysis", f"gdn_{i}", model.g_a[2 * i + 1])
    for i in range(3):
        put("hyper_analysis", f"conv_{i}", model.h_a[i])
        put("hyper_synthesis", f"mean_{i}", model.h_mean[i], deconv=i < 2)
        put("hyper_synthesis", f"scale_{i}", model.h_scale[i], deconv=i < 2)
    for i, (m, b) in enumerate(zip(model.prior.matrices, model.prior.biases)):
        groups["hyper_analysis"][f"prior/matrix_{i}"] = m.detach().cpu().numpy()
        groups["hyper_analysis"][f"prior/bias_{i}"] = b.detach().cpu().numpy()
    for i, f in enumerate(model.prior.factors):
        groups["hyper_analysis"][f"prior/factor_{i}"] = f.detach().cpu().numpy()
    groups["analysis"]["gain"] = model.gain.detach().cpu().numpy()
    groups["synthesis"] = model.export_synthesis()
    return groups


def export_synthesis(g_s, inverse_gain) -> dict[str, np.ndarray]:
    """``synthesis.npz``'s arrays: the layers ``g_s`` (transposed convolutions and inverse GDNs, alternating) and the inverse gains."""
    out = {}
    for i, layer in enumerate(g_s):
        if i % 2 == 0:
            out[f"deconv_{i // 2}/kernel"] = _tf_deconv(layer.conv)
            out[f"deconv_{i // 2}/bias"] = layer.conv.bias.detach().cpu().numpy()
        else:
            out[f"igdn_{i // 2}/beta"] = layer.beta.detach().cpu().numpy()
            out[f"igdn_{i // 2}/gamma"] = layer.gamma.detach().cpu().numpy()
    out["inverse_gain"] = inverse_gain.detach().cpu().numpy()
    return out


def import_weights(model: Hyperprior, folder, groups=("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")) -> None:
    """The inverse of :func:`export_weights`: load the .npz files of a folder into ``model``.

    ``folder``: a folder of ``GROUP.npz`` files, or a dict of arrays by ``GROUP/KEY`` (``tools/gpu_slot.py``'s packed file);
    ``groups``: the groups to load (every weight of each, no more, no less).
    """
    arrays = {}
    for group in groups:
        if isinstance(folder, dict):
            arrays.update({k: v.astype(np.float32) for k, v in folder.items() if k.startswith(group + "/")})
        else:
            with np.load(os.path.join(folder, f"{group}.npz")) as f:
                arrays.update({f"{group}/{k}": f[k].astype(np.float32) for k in f.files})
    exported = {f"{g}/{k}": v for g, d in export_weights(model).items() if g in groups for k, v in d.items()}
    assert set(exported) == set(arrays), set(exported) ^ set(arrays)

    def dst(key):
        g, name = key.split("/", 1)
        if name == "gain":
            return model.gain, None
        if name == "inverse_gain":
            return model.inverse_gain, None
        layer, what = name.rsplit("/", 1)
        if layer == "prior":
            kind, i = what.rsplit("_", 1)
            return {"matrix": model.prior.matrices, "bias": model.prior.biases, "factor": model.prior.factors}[kind][int(i)], None
        base, i = layer.rsplit("_", 1)
        i = int(i)
        mod = {("analysis", "conv"): lambda: model.g_a[2 * i], ("analysis", "gdn"): lambda: model.g_a[2 * i + 1],
               ("synthesis", "deconv"): lambda: model.g_s[2 * i], ("synthesis", "igdn"): lambda: model.g_s[2 * i + 1],
               ("hyper_analysis", "conv"): lambda: model.h_a[i], ("hyper_synthesis", "mean"): lambda: model.h_mean[i],
               ("hyper_synthesis", "scale"): lambda: model.h_scale[i]}[(g, base)]()
        if what in ("beta", "gamma"):
            return getattr(mod, what), None
        return (mod.conv.weight, "kernel") if what == "kernel" else (mod.conv.bias, None)

    with torch.no_grad():
        for key, value in arrays.items():
            param, kind = dst(key)
            if kind == "kernel":
                value = value.transpose(3, 2, 0, 1)  # (kh, kw, in, out) or (kh, kw, out, in) -> torch layout
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.device))


# -------------------------------------------------------------------------- data
def load_photos(folder, device):
    from PIL import Image

    files = sorted(glob.glob(os.path.join(folder, "**", "*.jpg"), recursive=True) + glob.glob(os.path.join(folder, "**", "*.png"), recursive=True))
    images = []
    for f in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB"))
        images.append(torch.from_numpy(a.copy()).to(device).permute(2, 0, 1).contiguous())
    return images


def crop_pool(images, count, size, gen):
    """``count`` random crops (uint8, (count, 3, size, size)): random image, scale, place, flips."""
    out = torch.empty((count, 3, size, size), dtype=torch.uint8, device=images[0].device)
    areas = np.array([im.shape[1] * im.shape[2] for im in images], np.float64)
    picks = gen.choice(len(images), size=count, p=areas / areas.sum())
    for n, i in enumerate(picks):
        im = images[i]
        h, w = im.shape[1:]
        s = 1.0
        if gen.random() < 0.3:  # downscaled detail: a larger region shrunk to the crop size
            s = gen.uniform(max(size / min(h, w), 0.6), 1.0) if min(h, w) * 0.6 >= size else 1.0
        side = int(round(size / s))
        side = min(side, h, w)
        y0, x0 = gen.integers(0, h - side + 1), gen.integers(0, w - side + 1)
        c = im[:, y0 : y0 + side, x0 : x0 + side]
        if side != size:
            c = F.interpolate(c[None].float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
            c = c.round().clamp(0, 255).to(torch.uint8)
        if gen.random() < 0.5:
            c = c.flip(2)
        if gen.random() < 0.5:
            c = c.transpose(1, 2)
        out[n] = c
    return out


def batches(images, batch: int, size: int, anchors: int, gen, pool_size: int = 1024):
    """Endless training batches: crops (float 0-1, (batch, 3, size, size)) from pools of ``crop_pool``, and a random anchor per crop."""
    while True:
        pool = crop_pool(images, pool_size, size, gen)
        for i in range(0, pool_size - batch + 1, batch):
            level = torch.as_tensor(gen.integers(0, anchors, size=batch), device=pool.device)
            yield pool[i : i + batch].float().div_(255.0), level


# ----------------------------------------------------------------------- training
def device(name: str, seed: int):
    """The torch device ``name`` (TF32 and cuDNN's autotuner on a GPU), the seed set."""
    if name == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(seed)
    return torch.device(name)


def cosine_lr(lr: float, lr_min: float, progress: float) -> float:
    """The learning rate ``progress`` (0-1) of the way along one cosine from ``lr`` to ``lr_min``."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * progress))


class AnchorBalance:
    """Weights that give every rate anchor the same say in the shared weights: each image's loss over its anchor's running mean.

    Unweighted, an image at the top anchor (lambda 0.36: a loss near 7)
    pulls the shared transforms 20 times harder than one at the bottom
    (0.0018: near 0.4), so a run that adds top anchors trains the shared
    weights for the top.  Over its running mean, each anchor's loss counts by
    its relative change, which is what a BD-rate averages; each anchor's own
    gains see their loss scaled by a constant (the same optimum).
    """

    def __init__(self, anchors: int, on, decay: float = 0.99):
        self.mean = torch.zeros(anchors, device=on)
        self.decay = decay

    def __call__(self, level, per_image):
        # tensor operations only: no host synchronisation, so the GPU's queue never drains here
        with torch.no_grad():
            per_image = per_image.float()
            sums = torch.zeros_like(self.mean).index_add_(0, level, per_image)
            counts = torch.zeros_like(self.mean).index_add_(0, level, torch.ones_like(per_image))
            seen = sums / counts.clamp_min(1)
            updated = torch.where(self.mean == 0, seen, self.decay * self.mean + (1 - self.decay) * seen)
            self.mean = torch.where(counts > 0, updated, self.mean)
        return self.mean[level]


def train_step(model, opt, x, level, lambdas, lr, balance: AnchorBalance | None = None):
    """One Adam step on lambda * 255^2 * MSE + bpp (anchors ``level``), gradient norm clipped at 1: (loss, MSE, bpp) per image.

    ``balance``: each image's loss divided by its anchor's running mean (:class:`AnchorBalance`); the loss returned is unweighted.
    """
    for g in opt.param_groups:
        g["lr"] = lr
    x_hat, bits_y, bits_z = model(x, level)
    mse = ((x - x_hat) ** 2).mean(dim=(1, 2, 3))
    bpp = (bits_y + bits_z) / (x.shape[2] * x.shape[3])
    per_image = lambdas[level] * 255.0**2 * mse + bpp
    weight = balance(level, per_image.detach()) if balance is not None else 1.0
    opt.zero_grad(set_to_none=True)
    (per_image / weight).mean().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return per_image.mean(), mse, bpp


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--total-minutes", type=float, default=25.0)
    p.add_argument("--ckpt", required=True, help="the full checkpoint (weights and optimizer), read if it exists and rewritten")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-npz", default=None, help="a folder of exported .npz weights to start from (when there is no checkpoint)")
    p.add_argument("--trained-minutes", type=float, default=0.0, help="with --init-npz: minutes already trained, for the schedule")
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-steps", type=int, default=0)
    args = p.parse_args()
    t_start = time.time()
    dev = device(args.device, args.seed)
    model = Hyperprior().to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, trained_s = 0, 0.0
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, map_location=dev)
        model.load_state_dict(ck["model"])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        step, trained_s = ck["step"], ck["trained_s"]
        print(f"resumed at step {step}, {trained_s / 60:.1f} min trained", flush=True)
    elif args.init_npz:
        import_weights(model, args.init_npz)
        trained_s = args.trained_minutes * 60
        print(f"weights from {args.init_npz}", flush=True)
    gen = np.random.default_rng(args.seed + step)
    images = load_photos(args.photos, dev)
    print(f"{len(images)} photos loaded in {time.time() - t_start:.1f} s", flush=True)
    lambdas = torch.tensor(LAMBDAS, device=dev)
    os.makedirs(args.out, exist_ok=True)
    data = batches(images, args.batch, args.crop, len(LAMBDAS), gen, pool_size=4096)
    stats = {k: [] for k in range(len(LAMBDAS))}
    t0 = time.time()
    last_log = last_save = t0
    budget = args.minutes * 60
    while time.time() - t0 < budget and (not args.max_steps or step < args.max_steps):
        x, level = next(data)
        x = x.contiguous(memory_format=torch.channels_last)
        progress = min((trained_s + time.time() - t0) / (args.total_minutes * 60), 1.0)
        lr = cosine_lr(args.lr, args.lr_min, progress)
        loss, mse, bpp = train_step(model, opt, x, level, lambdas, lr)
        step += 1
        if step % 50 == 0:
            lv = level.cpu().numpy()
            m, b = mse.detach().cpu().numpy(), bpp.detach().cpu().numpy()
            for j, k in enumerate(lv):
                stats[int(k)].append((m[j], b[j]))
        now = time.time()
        if now - last_log > 60:
            if not torch.isfinite(loss):
                raise SystemExit("loss is not finite")
            parts = []
            for k in range(len(LAMBDAS)):
                if stats[k]:
                    a = np.array(stats[k][-200:])
                    parts.append(f"q{k}: {10 * np.log10(1 / max(a[:, 0].mean(), 1e-10)):.2f}dB {a[:, 1].mean():.3f}bpp")
            el = trained_s + now - t0
            print(f"step {step} {el / 60:.1f} min lr {lr:.2e} {(step) / max(el, 1e-9):.1f} it/s | " + " | ".join(parts), flush=True)
            last_log = now
        if now - last_save > 180:
            _save(model, opt, step, trained_s + now - t0, args)
            last_save = now
    _save(model, opt, step, trained_s + time.time() - t0, args)
    print(f"done: step {step}, {(trained_s + time.time() - t0) / 60:.1f} min trained", flush=True)


def _save(model, opt, step, trained_s, args):
    out = args.out
    tmp = args.ckpt + ".part"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": trained_s}, tmp)
    os.replace(tmp, args.ckpt)
    for group, arrays in export_weights(model).items():
        np.savez(os.path.join(out, f"{group}.npz"), **arrays)
    with open(os.path.join(out, "progress.txt"), "w") as f:
        f.write(f"{step} {trained_s:.1f}\n")


if __name__ == "__main__":
    main()
