"""Train the embedded shapes model: stage ``ae`` (the VAE), then stage ``flow`` (the transformer).

Reproducible from ``--seed`` (data, init and noise all come from seeded generators whose states are
checkpointed), resumable (each stage resumes from its checkpoint in ``--ckpt-dir`` when one exists),
and polite: one CPU thread. See training/README.md for the recipe and the measured costs.

    python training/train_shapes.py --stage ae   --steps 800    # VAE, jointly
    python training/train_shapes.py --stage flow               # transformer (frozen encoder's latents)
    python training/train_shapes.py --stage dec  --steps 1000   # decoder only; any time after ae
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_components as C  # noqa: E402
from common import atomic_save, log, lr_at, parse_training_args, save_grid, training_parser  # noqa: E402
from shapes_components import shapes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> float [-1, 1] [n, 3, H, W]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()


# ---------------------------------------------------------------------------------------------- AE


def train_ae(a) -> None:
    path = os.path.join(a.ckpt_dir, "ae.pt")
    torch.manual_seed(a.seed)
    vae = C.build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=a.lr, weight_decay=0.0)
    rng = np.random.default_rng(a.seed)
    step = 0
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        step = ck["step"]
        log(f"resumed AE from {path} at step {step}")
    vae.train()
    t0, last_ck, losses = time.time(), time.time(), []

    def checkpoint(final=False):
        stats = latent_stats(vae)
        atomic_save(
            {"vae": vae.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
             "torch_rng": torch.get_rng_state(), "step": step, "latent_stats": stats, "args": vars(a)},
            path,
        )
        recon_grid(vae, os.path.join(a.ckpt_dir, "ae_recon.png"))
        log(f"AE checkpoint step {step} -> {path} (latent mean {stats['mean']:.3f} std {stats['std']:.3f})")

    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup, a.steps, a.decay)
        imgs, _ = shapes.render_batch(rng, a.batch)
        x = to_tensor(imgs)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.sample()).sample
        rec = (y - x).abs().mean() + (y - x).pow(2).mean()
        kl = post.kl().mean() / x[0].numel()
        loss = rec + a.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(rec.item())
        if step % 25 == 0:
            log(f"ae step {step} rec {np.mean(losses[-25:]):.4f} kl {kl.item():.3f} {(time.time() - t0) / len(losses):.2f}s/step")
        if time.time() - last_ck > a.ckpt_every or step == a.steps:
            vae.eval()
            checkpoint()
            vae.train()
            last_ck = time.time()
        if a.max_minutes and time.time() - t0 > 60 * a.max_minutes:
            vae.eval()
            checkpoint()
            log("time budget reached")
            return


def train_dec(a) -> None:
    """Fine-tune only the VAE decoder on the frozen encoder's latents.

    The flow model only ever sees the encoder's latents (and their scale/shift, measured on the
    encoder), so the decoder can keep improving after the flow stage has started without
    invalidating it. Writes the decoder back into ``ae.pt``; ``step`` (the encoder's) is unchanged
    and ``dec_step`` counts these steps.
    """
    path = os.path.join(a.ckpt_dir, "ae.pt")
    ck = torch.load(path, weights_only=False)
    vae = C.build_vae()
    vae.load_state_dict(ck["vae"])
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    dec_step = ck.get("dec_step", 0)
    rng = np.random.default_rng(a.seed + 10)
    gen = torch.Generator().manual_seed(a.seed + 11)
    if dec_step and "dec_opt" in ck:
        opt.load_state_dict(ck["dec_opt"])
        rng.bit_generator.state = ck["dec_rng"]
        gen.set_state(ck["dec_gen"])
        log(f"resumed decoder fine-tuning at dec_step {dec_step}")
    vae.train()
    vae.encoder.eval()
    t0, last_ck, losses = time.time(), time.time(), []

    def checkpoint():
        ck.update(vae=vae.state_dict(), dec_step=dec_step, dec_opt=opt.state_dict(),
                  dec_rng=rng.bit_generator.state, dec_gen=gen.get_state())
        atomic_save(ck, path)
        recon_grid(vae, os.path.join(a.ckpt_dir, "ae_recon.png"))
        log(f"decoder checkpoint dec_step {dec_step} -> {path}")

    while dec_step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(dec_step, a.lr, a.warmup)
        imgs, _ = shapes.render_batch(rng, a.batch)
        x = to_tensor(imgs)
        with torch.no_grad():
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        y = vae.decode(z).sample
        loss = (y - x).abs().mean() + (y - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dec_step += 1
        losses.append(loss.item())
        if dec_step % 25 == 0:
            log(f"dec step {dec_step} rec {np.mean(losses[-25:]):.4f} {(time.time() - t0) / len(losses):.2f}s/step")
        done = dec_step >= a.steps or (a.max_minutes and time.time() - t0 > 60 * a.max_minutes)
        if time.time() - last_ck > a.ckpt_every or done:
            vae.eval()
            checkpoint()
            vae.train()
            vae.encoder.eval()
            last_ck = time.time()
        if done:
            return


@torch.no_grad()
def latent_stats(vae, n: int = 512) -> dict:
    was = vae.training
    vae.eval()
    rng = np.random.default_rng(999)
    imgs, _ = shapes.render_batch(rng, n)
    z = torch.cat([vae.encode(to_tensor(imgs[i : i + 128])).latent_dist.mean for i in range(0, n, 128)])
    vae.train(was)
    return {"mean": z.mean().item(), "std": z.std().item()}


@torch.no_grad()
def recon_grid(vae, path: str) -> None:
    rng = np.random.default_rng(12345)
    imgs, _ = shapes.render_batch(rng, 16)
    y = vae.decode(vae.encode(to_tensor(imgs)).latent_dist.mean).sample
    save_grid(np.concatenate([imgs[:8], to_uint8(y[:8]), imgs[8:], to_uint8(y[8:])]), path)


def load_vae(ckpt_dir: str):
    ck = torch.load(os.path.join(ckpt_dir, "ae.pt"), weights_only=False)
    vae = C.build_vae()
    vae.load_state_dict(ck["vae"])
    st = ck["latent_stats"]
    vae.register_to_config(scaling_factor=1.0 / st["std"], shift_factor=st["mean"])
    return vae.eval().requires_grad_(False)


# -------------------------------------------------------------------------------------------- flow


def prompt_table():
    """Every training prompt (canonical form) plus the empty prompt (index 0), with embeddings."""
    combos = shapes.all_combinations()
    prompts = [""] + [shapes.make_prompt(*c) for c in combos]
    embeds, pooled = C.encode_prompts(prompts)
    index = {c: i + 1 for i, c in enumerate(combos)}
    return prompts, embeds, pooled, index


def latent_dataset(vae, a):
    """A fixed set of ``a.n_latents`` scenes encoded once (posterior means), cached on disk.

    Encoding a batch costs about a quarter of a training step, so it is done once up front; the set
    is a deterministic function of ``--seed`` and the VAE checkpoint, so resuming rebuilds it exactly.
    """
    ae_step = torch.load(os.path.join(a.ckpt_dir, "ae.pt"), weights_only=False)["step"]
    cache_dir = os.path.join(HERE, "cache")
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"latents_seed{a.seed}_n{a.n_latents}_ae{ae_step}.pt")
    if os.path.exists(path):
        return torch.load(path)
    rng = np.random.default_rng(a.seed + 1)
    zs, keys, t0 = [], [], time.time()
    with torch.no_grad():
        for i in range(0, a.n_latents, 128):
            imgs, scenes = shapes.render_batch(rng, min(128, a.n_latents - i))
            zs.append(vae.encode(to_tensor(imgs)).latent_dist.mean)
            keys += [(s.colour, s.shape, s.background) for s in scenes]
    combos = {c: i + 1 for i, c in enumerate(shapes.all_combinations())}
    data = {"z": torch.cat(zs), "prompt_idx": torch.tensor([combos[k] for k in keys])}
    atomic_save(data, path)
    log(f"encoded {a.n_latents} scenes in {time.time() - t0:.0f}s -> {path}")
    return data


def train_flow(a) -> None:
    state_path = os.path.join(a.ckpt_dir, "flow.pt")
    optim_path = os.path.join(a.ckpt_dir, "flow_optim.pt")
    vae = load_vae(a.ckpt_dir)
    sf, sh = vae.config.scaling_factor, vae.config.shift_factor
    prompts, embeds, pooled, index = prompt_table()
    txt_ids, img_ids = torch.zeros(C.T5_LEN, 3), C.image_ids()
    torch.manual_seed(a.seed)
    model = C.build_transformer()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.0)
    data = latent_dataset(vae, a)
    rng = np.random.default_rng(a.seed + 1)  # unused since the latent set is precomputed; kept for resume compat
    gen = torch.Generator().manual_seed(a.seed + 2)
    step = 0
    if os.path.exists(state_path):
        ck = torch.load(state_path, weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        rng.bit_generator.state = ck["rng"]
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
    log(f"transformer {n_params / 1e6:.2f}M params; {len(prompts) - 1} prompts; scale {sf:.3f} shift {sh:.3f}")

    def checkpoint():
        atomic_save({"model": model.state_dict(), "ema": ema.state_dict(), "rng": rng.bit_generator.state,
                     "gen": gen.get_state(), "step": step, "args": vars(a)}, state_path)
        atomic_save({"opt": opt.state_dict(), "step": step}, optim_path)
        log(f"flow checkpoint step {step} -> {state_path}")

    model.train()
    t0, last_ck, last_sample, losses = time.time(), time.time(), time.time(), []
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup, a.steps, a.decay)
        pick = torch.randint(len(data["z"]), (a.batch,), generator=gen)
        x0 = C.pack((data["z"][pick] - sh) * sf)
        idx = data["prompt_idx"][pick]
        drop = torch.rand(a.batch, generator=gen) < a.p_uncond
        idx = torch.where(drop, torch.zeros_like(idx), idx)
        if a.t_sampling == "logit_normal":
            sigma = torch.sigmoid(torch.randn(a.batch, generator=gen))
        else:
            sigma = torch.rand(a.batch, generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma[:, None, None]
        xt = (1 - s) * x0 + s * noise
        pred = model(hidden_states=xt, timestep=sigma, encoder_hidden_states=embeds[idx],
                     pooled_projections=pooled[idx], txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
        loss = (pred - (noise - x0)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(a.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        losses.append(loss.item())
        if step % 25 == 0:
            log(f"flow step {step} loss {np.mean(losses[-25:]):.4f} {(time.time() - t0) / len(losses):.2f}s/step")
        done = step >= a.steps or (a.max_minutes and time.time() - t0 > 60 * a.max_minutes)
        if time.time() - last_ck > a.ckpt_every or done:
            checkpoint()
            last_ck = time.time()
        if a.sample_every and (time.time() - last_sample > a.sample_every or done):
            sample_and_score(vae, ema, os.path.join(a.ckpt_dir, "flow_samples.png"), step)
            last_sample = time.time()
        if done:
            log("done" if step >= a.steps else "time budget reached")
            return


@torch.no_grad()
def sample_and_score(vae, transformer, path: str, step: int, steps: int = 50) -> dict:
    """Sample the fixed eval prompts with the stock FluxPipeline; save a grid and log pass rates."""
    pipe = C.build_pipeline(vae, transformer)
    pipe.set_progress_bar_config(disable=True)
    prompts = shapes.eval_prompts(24)
    kw = shapes.call_kwargs(len(prompts), num_inference_steps=steps)
    out = pipe(prompts, generator=torch.Generator().manual_seed(0), output_type="np", **kw).images
    imgs = (out * 255).round().astype(np.uint8)
    save_grid(imgs, path)
    res = [shapes.check_image(im, p) for im, p in zip(imgs, prompts)]
    rates = {k: float(np.mean([r[k] for r in res])) for k in ("background", "colour", "shape")}
    log(f"samples step {step}: {json.dumps(rates)} -> {path}")
    return rates


def main(argv=None) -> None:
    p = training_parser(__doc__, {"ae": (800, 32, 2e-3, 0), "dec": (1000, 32, 1e-3, 0), "flow": (30000, 32, 1e-3, 10000)},
                        os.path.join(HERE, "checkpoints"), n_latents=24576)
    p.add_argument("--t-sampling", choices=["logit_normal", "uniform"], default="logit_normal")
    a = parse_training_args(p, argv)
    {"ae": train_ae, "dec": train_dec, "flow": train_flow}[a.stage](a)


if __name__ == "__main__":
    main()
