"""Timing of candidate components on 1 CPU thread (used to choose the recipe; see README)."""
import time, torch
torch.set_num_threads(1)
from diffusers import AutoencoderKL, FluxTransformer2DModel

def t(fn, n=3):
    fn(); s = time.time()
    for _ in range(n): fn()
    return (time.time() - s) / n

def ae(blocks, lat, bs=32, res=64):
    m = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",)*len(blocks),
        up_block_types=("UpDecoderBlock2D",)*len(blocks), block_out_channels=blocks, layers_per_block=1,
        latent_channels=lat, norm_num_groups=min(8, blocks[0]), sample_size=res, mid_block_add_attention=False)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.randn(bs, 3, res, res)
    def step():
        post = m.encode(x).latent_dist; z = post.sample(); y = m.decode(z).sample
        loss = (y - x).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
    n = sum(p.numel() for p in m.parameters())
    print(f"AE {blocks} lat{lat}: {n/1e6:.2f}M params, z {tuple(m.encode(x[:1]).latent_dist.mean.shape)}, {t(step):.3f}s/step bs{bs}", flush=True)

def tr(tokens, ch, heads=4, hd=32, dbl=2, sgl=4, bs=64, txt=16):
    m = FluxTransformer2DModel(patch_size=1, in_channels=ch, num_layers=dbl, num_single_layers=sgl, attention_head_dim=hd,
        num_attention_heads=heads, joint_attention_dim=64, pooled_projection_dim=64, guidance_embeds=False,
        axes_dims_rope=(hd//4, 3*hd//8, 3*hd//8))
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.randn(bs, tokens, ch); e = torch.randn(bs, txt, 64); p = torch.randn(bs, 64)
    side = int(tokens**0.5); ids = torch.zeros(side, side, 3); ids[..., 1] = torch.arange(side)[:, None]; ids[..., 2] = torch.arange(side)[None]
    ids = ids.reshape(-1, 3); tids = torch.zeros(txt, 3); ts = torch.rand(bs)
    def step():
        y = m(hidden_states=x, timestep=ts, encoder_hidden_states=e, pooled_projections=p, txt_ids=tids, img_ids=ids, return_dict=False)[0]
        loss = (y - x).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
    n = sum(p.numel() for p in m.parameters())
    print(f"TR tokens{tokens} ch{ch} {heads}x{hd} {dbl}+{sgl}: {n/1e6:.2f}M, {t(step):.3f}s/step bs{bs}", flush=True)

if __name__ == "__main__":
    ae((32, 64, 64), 4); ae((32, 64, 64, 64), 8); ae((16, 32, 64, 64), 8); ae((16,32,64),4)
    tr(16, 32); tr(64, 16); tr(16, 32, heads=6, hd=32, dbl=2, sgl=6); tr(256, 12)
