"""Builders for every component of the embedded shapes FluxPipeline (shared by training and export).

The architecture is fixed here, in one place, so that a checkpoint written by ``train_shapes.py``
always loads into the same modules that ``export_shapes.py`` saves as a diffusers pipeline folder.

* tokenizers: word-level ``tokenizers`` models over :func:`spectrum_core.models.shapes.vocabulary`
  ("a"/"an" share one id, as do "gray"/"grey"; lower-casing and full stops are normalised away);
* text encoders: a 2-layer CLIP text model (pooled vector, 64-d) and a 2-layer T5 encoder (64-d per
  token), both with *random, frozen* weights from a fixed seed: their outputs are deterministic
  features of the prompt, and the transformer learns to read them;
* VAE: a small ``AutoencoderKL`` (64 px RGB <-> 16x16x4 latent, trained in stage 1);
* transformer: a small ``FluxTransformer2DModel`` (1.0 M parameters: width 96, 2 double + 2 single
  blocks) on the packed 8x8 grid of 16-channel tokens plus 8 text tokens;
* scheduler: ``FlowMatchEulerDiscreteScheduler`` with FLUX's dynamic shift.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spectrum_core.models import shapes  # noqa: E402

TEXT_DIM = 64
T5_LEN = shapes.PIPELINE_CALL_DEFAULTS["max_sequence_length"]
CLIP_LEN = 16
TEXT_SEED = 1234

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(8, 16, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=2,  # 8 groups on 8 channels would instance-normalise each channel and lose colour
    sample_size=shapes.IMAGE_SIZE,
    mid_block_add_attention=False,
    force_upcast=False,
)
LATENT_CH, LATENT_SIDE = 4, shapes.IMAGE_SIZE // 4

TRANSFORMER_CONFIG = dict(
    patch_size=1,
    in_channels=LATENT_CH * 4,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=32,
    num_attention_heads=3,
    joint_attention_dim=TEXT_DIM,
    pooled_projection_dim=TEXT_DIM,
    guidance_embeds=False,
    axes_dims_rope=(8, 12, 12),
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)


ALIASES = {"an": "a", **shapes.SYNONYMS}  # rewritten by the tokenizers' normaliser


def _word_ids() -> dict[str, int]:
    specials = ["[PAD]", "[UNK]", "<|startoftext|>", "<|endoftext|>"]
    vocab = {s: i for i, s in enumerate(specials)}
    canon = ALIASES
    for w in shapes.vocabulary():
        if w in canon:
            continue
        vocab[w] = len(vocab)
    return vocab


def build_tokenizer(kind: str):
    """A word-level fast tokenizer; ``kind`` is ``"clip"`` (BOS ... EOS) or ``"t5"`` (... EOS)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = _word_ids()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    aliases = [normalizers.Replace(Regex(rf"\b{a}\b"), b) for a, b in ALIASES.items()]
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(".", " "), *aliases])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    if kind == "clip":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
        )
        length = CLIP_LEN
    elif kind == "t5":
        tok.post_processor = processors.TemplateProcessing(single=f"$A {eos}", special_tokens=[(eos, vocab[eos])])
        length = T5_LEN
    else:
        raise ValueError(f"Unknown tokenizer kind '{kind}'. Choose from: clip, t5.")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        unk_token="[UNK]",
        pad_token="[PAD]",
        model_max_length=length,
    )


def build_text_encoders():
    """Random, frozen CLIP and T5 text encoders (deterministic from TEXT_SEED)."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    vocab = _word_ids()
    n = max(vocab.values()) + 1
    torch.manual_seed(TEXT_SEED)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=n,
            hidden_size=TEXT_DIM,
            intermediate_size=2 * TEXT_DIM,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=CLIP_LEN,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["[PAD]"],
            projection_dim=TEXT_DIM,
        )
    ).eval()
    torch.manual_seed(TEXT_SEED + 1)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=n,
            d_model=TEXT_DIM,
            d_kv=16,
            d_ff=2 * TEXT_DIM,
            num_layers=2,
            num_heads=4,
            pad_token_id=vocab["[PAD]"],
            eos_token_id=vocab["<|endoftext|>"],
            decoder_start_token_id=vocab["[PAD]"],
            dropout_rate=0.0,
        )
    ).eval()
    for m in (clip, t5):
        m.requires_grad_(False)
    return clip, t5


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def build_transformer():
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(**TRANSFORMER_CONFIG)


def build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)


def build_pipeline(vae, transformer):
    """A FluxPipeline around trained ``vae`` and ``transformer`` and the fixed text side."""
    from diffusers import FluxPipeline

    clip, t5 = build_text_encoders()
    return FluxPipeline(
        scheduler=build_scheduler(),
        vae=vae,
        text_encoder=clip,
        tokenizer=build_tokenizer("clip"),
        text_encoder_2=t5,
        tokenizer_2=build_tokenizer("t5"),
        transformer=transformer,
    )


@torch.no_grad()
def encode_prompts(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t5_embeds [n, T5_LEN, 64], clip_pooled [n, 64])`` exactly as FluxPipeline.encode_prompt makes them."""
    clip, t5 = build_text_encoders()
    tc, tt = build_tokenizer("clip"), build_tokenizer("t5")
    ci = tc(prompts, padding="max_length", max_length=CLIP_LEN, truncation=True, return_tensors="pt").input_ids
    ti = tt(prompts, padding="max_length", max_length=T5_LEN, truncation=True, return_tensors="pt").input_ids
    pooled = clip(ci, output_hidden_states=False).pooler_output
    embeds = t5(ti, output_hidden_states=False)[0]
    return embeds.float(), pooled.float()


def image_ids(side: int = LATENT_SIDE // 2) -> torch.Tensor:
    ids = torch.zeros(side, side, 3)
    ids[..., 1] = torch.arange(side)[:, None]
    ids[..., 2] = torch.arange(side)[None, :]
    return ids.reshape(-1, 3)


def pack(z: torch.Tensor) -> torch.Tensor:
    """[b, c, h, w] latents -> [b, h/2*w/2, 4c] tokens, as FluxPipeline._pack_latents."""
    b, c, h, w = z.shape
    z = z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return z.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, side: int = LATENT_SIDE) -> torch.Tensor:
    b, n, c4 = x.shape
    x = x.view(b, side // 2, side // 2, c4 // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c4 // 4, side, side)


def mu_for_tokens(n_tokens: int) -> float:
    """FluxPipeline's calculate_shift for our scheduler config."""
    c = SCHEDULER_CONFIG
    m = (c["max_shift"] - c["base_shift"]) / (c["max_image_seq_len"] - c["base_image_seq_len"])
    return n_tokens * m + c["base_shift"] - m * c["base_image_seq_len"]
