"""Train the embedded moving-shapes video model: stage ``vae`` (AutoencoderKLWan), then stage ``flow``
(WanTransformer3DModel); stage ``dec`` fine-tunes the VAE decoder alone at any time after ``vae``.

Reproducible from ``--seed`` (data, init, noise and prompt dropout come from seeded generators whose
states are checkpointed), resumable (each stage continues from its checkpoint in ``--ckpt-dir``),
checkpoints written atomically every ``--ckpt-every`` seconds, one CPU thread. See the "Video sibling"
section of training/README.md for the recipe and the measured costs.

    python training/train_moving.py --stage vae                 # VAE, jointly, on rendered clips
    python training/train_moving.py --stage flow                # transformer on the frozen encoder's latents
    python training/train_moving.py --stage dec                 # decoder only; any time after vae
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moving_components as C  # noqa: E402
from moving_components import moving_shapes as M  # noqa: E402
from common import atomic_save, log, lr_at, parse_training_args, save_grid, training_parser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CKPT = os.path.join(HERE, "checkpoints", "video")


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 [n, F, H, W, 3] -> float [-1, 1] [n, 3, F, H, W] (AutoencoderKLWan's layout)."""
    return torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float [-1, 1] [n, 3, F, H, W] -> uint8 [n, F, H, W, 3]."""
    return x.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 4, 1).numpy()


def clip_grid(rows: list[np.ndarray], path: str) -> None:
    """Save clips ([F, H, W, 3] each) as a PNG: one clip per row, frames left to right."""
    save_grid(np.concatenate(rows), path, cols=rows[0].shape[0])


# --------------------------------------------------------------------------------------------- VAE


def foreground_weights(x: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """Per-pixel loss weights: ``fg_weight`` on the shape, 1 on the background.

    The shape covers a few percent of a frame, so a plain mean lets the decoder trade the shape's colour
    for a slightly better background. The background is uniform and the shape never touches the border,
    so every pixel that differs from the frame's corner is the shape (or its antialiased edge)."""
    fg = (x - x[..., :1, :1]).abs().amax(1, keepdim=True) > 0.05
    return 1.0 + (fg_weight - 1.0) * fg.float()


def _vae_loss(vae, x, kl_weight, gen=None, train_encoder=True, fg_weight=1.0):
    if train_encoder:
        post = vae.encode(x).latent_dist
        z = post.sample(generator=gen)
        kl = post.kl().mean() / x[0].numel()
    else:
        with torch.no_grad():
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        kl = torch.zeros(())
    y = vae.decode(z).sample
    w = foreground_weights(x, fg_weight)
    d = y - x
    rec = ((d.abs() + d.pow(2)) * w).mean() / w.mean()
    return rec + kl_weight * kl, rec, kl


def train_vae(a, decoder_only: bool = False) -> None:
    """Stage ``vae`` (joint) or ``dec`` (decoder only, encoder frozen; counts ``dec_step``).

    The flow stage only sees the frozen encoder's latents, so ``dec`` can run at any time after ``vae``
    without invalidating it; ``vae`` refuses to continue once ``dec`` has started."""
    path = os.path.join(a.ckpt_dir, "vae.pt")
    torch.manual_seed(a.seed)
    vae = C.build_vae()
    prefix = "dec_" if decoder_only else ""
    ck = {}
    if decoder_only:
        ck = torch.load(path, weights_only=False)
        vae.load_state_dict(ck["vae"])
        ck.pop("opt", None)  # the joint stage's Adam state (2/3 of the file): that stage cannot resume now
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    rng = np.random.default_rng(a.seed + (10 if decoder_only else 0))
    gen = torch.Generator().manual_seed(a.seed + (11 if decoder_only else 1))
    step = 0
    if not decoder_only and os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        if ck.get("dec_step"):
            raise SystemExit(f"{path} already has a trained decoder (dec_step {ck['dec_step']}): the joint "
                             "stage is over; train the decoder with --stage dec")
        vae.load_state_dict(ck["vae"])
    if ck.get(prefix + "step") and prefix + "opt" in ck:
        opt.load_state_dict(ck[prefix + "opt"])
        rng.bit_generator.state = ck[prefix + "rng"]
        gen.set_state(ck[prefix + "gen"])
        step = ck[prefix + "step"]
        log(f"resumed {'decoder' if decoder_only else 'VAE'} from {path} at {prefix}step {step}")
    log(f"VAE {sum(p.numel() for p in vae.parameters()) / 1e6:.3f}M params, training {sum(p.numel() for p in params) / 1e6:.3f}M")

    def set_mode():
        vae.train()
        if decoder_only:
            vae.encoder.eval()

    def checkpoint():
        if not decoder_only:
            ck["latent_stats"] = latent_stats(vae)
            ck["step"] = step
        ck.update({"vae": vae.state_dict(), prefix + "opt": opt.state_dict(), prefix + "rng": rng.bit_generator.state,
                   prefix + "gen": gen.get_state(), prefix + "step": step, prefix + "args": vars(a)})
        atomic_save(ck, path)
        recon_grid(vae, os.path.join(a.ckpt_dir, "vae_recon.png"))
        st = ck["latent_stats"]
        log(f"{prefix}vae checkpoint step {step} -> {path} (latent mean {np.round(st['mean'], 2).tolist()} "
            f"std {np.round(st['std'], 2).tolist()}); reconstructions pass {json.dumps(recon_scores(vae))}")

    set_mode()
    t0, last_ck, losses, n = time.time(), time.time(), [], 0
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup, a.steps, a.decay)
        clips, _ = M.render_batch(rng, a.batch)
        loss, rec, kl = _vae_loss(vae, to_tensor(clips), a.kl, gen, train_encoder=not decoder_only,
                                  fg_weight=a.fg_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        n += 1
        losses.append(rec.item())
        if step % a.log_every == 0:
            log(f"{prefix}vae step {step} rec {np.mean(losses[-a.log_every:]):.4f} kl {kl.item():.3f} "
                f"{(time.time() - t0) / n:.2f}s/step")
        done = step >= a.steps or (a.max_minutes and time.time() - t0 > 60 * a.max_minutes)
        if time.time() - last_ck > a.ckpt_every or done:
            vae.eval()
            checkpoint()
            set_mode()
            last_ck = time.time()
        if done:
            log("done" if step >= a.steps else "time budget reached")
            return


@torch.no_grad()
def latent_stats(vae, n: int = 128) -> dict:
    """Per-channel mean/std of the encoder's posterior means over ``n`` fixed clips (seed 999)."""
    was = vae.training
    vae.eval()
    clips, _ = M.render_batch(np.random.default_rng(999), n)
    z = torch.cat([vae.encode(to_tensor(clips[i : i + 16])).latent_dist.mean for i in range(0, n, 16)])
    vae.train(was)
    z = z.transpose(0, 1).reshape(z.shape[1], -1)
    return {"mean": z.mean(1).tolist(), "std": z.std(1).tolist()}


@torch.no_grad()
def reconstruct(vae, clips: np.ndarray, batch: int = 16) -> np.ndarray:
    """uint8 clips through the VAE (posterior mean) and back, ``batch`` clips at a time."""
    return np.concatenate([to_uint8(vae.decode(vae.encode(to_tensor(clips[i : i + batch])).latent_dist.mean).sample)
                           for i in range(0, len(clips), batch)])


@torch.no_grad()
def recon_scores(vae, n: int = 32) -> dict:
    """Pass rates of the prompt checks on reconstructions of ``n`` fixed clips (seed 777): the ceiling
    the flow stage can reach through this decoder (the rendered clips themselves pass at 1.0)."""
    clips, scenes = M.render_batch(np.random.default_rng(777), n)
    return score(reconstruct(vae, clips), [s.prompt for s in scenes])[0]


@torch.no_grad()
def recon_grid(vae, path: str, n: int = 4) -> None:
    """Originals over reconstructions, ``n`` fixed clips, frames left to right."""
    clips, _ = M.render_batch(np.random.default_rng(12345), n)
    clip_grid([c for pair in zip(clips, reconstruct(vae, clips)) for c in pair], path)


def load_vae(ckpt_dir: str):
    """The trained VAE with its latent statistics written into its config (as WanPipeline reads them)."""
    ck = torch.load(os.path.join(ckpt_dir, "vae.pt"), weights_only=False)
    vae = C.build_vae()
    vae.load_state_dict(ck["vae"])
    st = ck["latent_stats"]
    C.latent_stats_to_config(vae, st["mean"], st["std"])
    return vae.eval().requires_grad_(False)


# -------------------------------------------------------------------------------------------- flow


def prompt_table():
    """Every training prompt (canonical form) plus the empty prompt (index 0), with their embeddings."""
    combos = M.all_combinations()
    prompts = [""] + [M.make_prompt(*c) for c in combos]
    return prompts, C.encode_prompts(prompts), {c: i + 1 for i, c in enumerate(combos)}


def latent_dataset(vae, a):
    """A fixed set of ``a.n_latents`` clips encoded once (posterior means), cached on disk.

    Encoding costs about as much as a transformer step, so it is done once up front; the set is a
    deterministic function of ``--seed`` and the VAE checkpoint's encoder step, so a resumed run rebuilds
    it exactly. Stored in float16 (the posterior means need far less precision than that).
    """
    ae_step = torch.load(os.path.join(a.ckpt_dir, "vae.pt"), weights_only=False)["step"]
    cache_dir = os.path.join(a.ckpt_dir, "cache")  # git-ignored by training/.gitignore's "cache/"
    os.makedirs(cache_dir, exist_ok=True)
    arch = hashlib.sha1(json.dumps(C.VAE_CONFIG, sort_keys=True).encode()).hexdigest()[:8]
    path = os.path.join(cache_dir, f"latents_seed{a.seed}_n{a.n_latents}_vae{ae_step}_{arch}.pt")
    if os.path.exists(path):
        return torch.load(path)
    rng = np.random.default_rng(a.seed + 1)
    zs, keys, t0 = [], [], time.time()
    combos = {c: i + 1 for i, c in enumerate(M.all_combinations())}
    with torch.no_grad():
        for i in range(0, a.n_latents, 16):
            clips, scenes = M.render_batch(rng, min(16, a.n_latents - i))
            zs.append(vae.encode(to_tensor(clips)).latent_dist.mean.half())
            keys += [(s.colour, s.shape, s.direction, s.background) for s in scenes]
            if (i // 16) % 64 == 63:
                log(f"encoded {i + 16}/{a.n_latents} clips ({(time.time() - t0) / (i + 16):.3f}s/clip)")
    data = {"z": torch.cat(zs), "prompt_idx": torch.tensor([combos[k] for k in keys])}
    atomic_save(data, path)
    log(f"encoded {a.n_latents} clips in {time.time() - t0:.0f}s -> {path}")
    return data


def sample_sigma(a, n: int, gen) -> torch.Tensor:
    if a.t_sampling == "uniform":
        return torch.rand(n, generator=gen)
    s = torch.sigmoid(torch.randn(n, generator=gen))
    if a.t_sampling == "shifted_logit_normal":  # the sampler's own shift applied to the training density
        k = C.SCHEDULER_CONFIG["flow_shift"]
        s = k * s / (1 + (k - 1) * s)
    return s


def train_flow(a) -> None:
    state_path = os.path.join(a.ckpt_dir, "flow.pt")
    optim_path = os.path.join(a.ckpt_dir, "flow_optim.pt")
    vae = load_vae(a.ckpt_dir)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    prompts, embeds, _ = prompt_table()
    data = latent_dataset(vae, a)
    torch.manual_seed(a.seed)
    model = C.build_transformer()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.0)
    gen = torch.Generator().manual_seed(a.seed + 2)
    step = 0
    if os.path.exists(state_path):
        ck = torch.load(state_path, weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        gen.set_state(ck["gen"])
        step = ck["step"]
        if os.path.exists(optim_path):
            ok = torch.load(optim_path, weights_only=False)
            if ok["step"] == step:
                opt.load_state_dict(ok["opt"])
            else:
                log(f"optimizer state is from step {ok['step']}, not {step}: starting Adam afresh")
        log(f"resumed flow from {state_path} at step {step}")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"transformer {n_params / 1e6:.3f}M params; {len(prompts) - 1} prompts; {len(data['z'])} clips; "
        f"latent {tuple(data['z'].shape[1:])}")

    def checkpoint():
        atomic_save({"model": model.state_dict(), "ema": ema.state_dict(), "gen": gen.get_state(),
                     "step": step, "args": vars(a)}, state_path)
        atomic_save({"opt": opt.state_dict(), "step": step}, optim_path)
        log(f"flow checkpoint step {step} -> {state_path}")

    model.train()
    t0, last_ck, last_sample, losses, n = time.time(), time.time(), time.time(), [], 0
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup, a.steps, a.decay)
        pick = torch.randint(len(data["z"]), (a.batch,), generator=gen)
        x0 = (data["z"][pick].float() - mean) / std
        idx = data["prompt_idx"][pick]
        drop = torch.rand(a.batch, generator=gen) < a.p_uncond
        idx = torch.where(drop, torch.zeros_like(idx), idx)
        sigma = sample_sigma(a, a.batch, gen)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        # WanPipeline calls the transformer with the scheduler's timestep t = 1000 * sigma.
        pred = model(hidden_states=xt, timestep=sigma * 1000, encoder_hidden_states=embeds[idx], return_dict=False)[0]
        loss = (pred - (noise - x0)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        n += 1
        with torch.no_grad():
            d = min(a.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        losses.append(loss.item())
        if step % a.log_every == 0:
            log(f"flow step {step} loss {np.mean(losses[-a.log_every:]):.4f} {(time.time() - t0) / n:.2f}s/step")
        done = step >= a.steps or (a.max_minutes and time.time() - t0 > 60 * a.max_minutes)
        if time.time() - last_ck > a.ckpt_every or done:
            checkpoint()
            last_ck = time.time()
        if a.sample_every and (time.time() - last_sample > a.sample_every or done):
            sample_and_score(vae, ema, os.path.join(a.ckpt_dir, "flow_samples.png"), step, steps=a.sample_steps)
            last_sample = time.time()
        if done:
            log("done" if step >= a.steps else "time budget reached")
            return


def score(clips: np.ndarray, prompts: list[str]) -> tuple[dict, list[dict]]:
    """Pass rates of :func:`spectrum_core.models.moving.check_clip` over clips and their prompts."""
    res = [M.check_clip(c, p) for c, p in zip(clips, prompts)]
    keys = ("background", "colour", "shape", "direction")
    rates = {k: float(np.mean([r[k] for r in res])) for k in keys}
    rates["all"] = float(np.mean([all(r.values()) for r in res]))
    return rates, res


@torch.no_grad()
def sample_and_score(vae, transformer, path: str, step: int, steps: int = 50, n: int = 8) -> dict:
    """Sample fixed eval prompts with the stock WanPipeline (CFG: separate cond/uncond calls); save a
    grid (one clip per row) and log the pass rates."""
    pipe = C.build_pipeline(vae, transformer)
    pipe.set_progress_bar_config(disable=True)
    prompts = M.eval_prompts(n)
    kw = dict(M.PIPELINE_CALL_DEFAULTS, num_inference_steps=steps)
    out = pipe(prompts, generator=torch.Generator().manual_seed(0), output_type="np", **kw).frames
    clips = (np.asarray(out) * 255).round().astype(np.uint8)
    clip_grid(list(clips), path)
    rates, _ = score(clips, prompts)
    log(f"samples step {step}: {json.dumps(rates)} -> {path}")
    return rates


def main(argv=None) -> None:
    p = training_parser(__doc__, {"vae": (4000, 4, 2e-3, 1500), "dec": (3000, 4, 1e-3, 1000), "flow": (18000, 32, 1e-3, 6000)},
                        DEFAULT_CKPT, n_latents=8192)
    p.add_argument("--fg-weight", type=float, default=4.0,
                   help="VAE: loss weight of the shape's pixels against the background's")
    p.add_argument("--t-sampling", choices=["logit_normal", "shifted_logit_normal", "uniform"], default="logit_normal")
    p.add_argument("--sample-steps", type=int, default=50, help="flow: sampler steps of the sample grids")
    p.add_argument("--log-every", type=int, default=25)
    a = parse_training_args(p, argv)
    if a.stage == "flow":
        train_flow(a)
    else:
        train_vae(a, decoder_only=a.stage == "dec")


if __name__ == "__main__":
    main()
