"""Builders for every component of the embedded moving-shapes WanPipeline (shared by training and export).

The architecture is fixed here, in one place, so that a checkpoint written by ``train_moving.py`` always
loads into the same modules that ``export_moving.py`` saves as a diffusers pipeline folder.

* tokenizer: a word-level ``tokenizers`` model over :func:`spectrum_core.models.moving.vocabulary`
  ("a"/"an" share one id, as do "gray"/"grey"; lower-casing and full stops normalised away), wrapped in
  ``PreTrainedTokenizerFast`` (round-trips ``save_pretrained``/``from_pretrained`` under transformers 5,
  as the image model's tokenizers do), ``<pad>`` = 0 and ``</s>`` appended like T5/UMT5;
* text encoder: a 2-layer ``UMT5EncoderModel`` (64-d), *random and frozen* from a fixed seed. WanPipeline
  passes the attention mask, so a prompt's features do not depend on the padding; it then zero-pads
  them to ``max_sequence_length`` (10 here), which the transformer does see;
* VAE: a small ``AutoencoderKLWan``: channels (8, 16, 32), one res-block per level, 4x spatial and 4x
  causal temporal compression, 8 latent channels: 9x64x64x3 <-> 3x16x16x8 (0.47 M params);
* transformer: a small ``WanTransformer3DModel``: patch (1, 2, 2), width 96 (3 heads x 32), 4 blocks,
  FFN 256, 64-d text input (0.59 M params): 3 x 8 x 8 = 192 video tokens + 10 text tokens;
* scheduler: ``UniPCMultistepScheduler`` in flow mode (``prediction_type="flow_prediction"``,
  ``use_flow_sigmas=True``, ``flow_shift=3.0``), the Wan presets' sampler.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spectrum_core.models import moving as moving_shapes, shapes  # noqa: E402

TEXT_DIM = 64
TEXT_LEN = moving_shapes.MAX_SEQUENCE_LENGTH
TEXT_SEED = 4321

Z_DIM = 8
VAE_CONFIG = dict(
    base_dim=16,  # at 8 the encoder lost shape colours (per-pixel RMS norms over 8 channels; see README)
    z_dim=Z_DIM,
    dim_mult=[1, 2, 4],  # 3 levels: 2 spatial downsamplings -> 4x
    num_res_blocks=1,
    attn_scales=[],
    temperal_downsample=[True, True],  # both downsamplings also halve time (causally): 4x, 4k+1 -> k+1
    dropout=0.0,
    latents_mean=[0.0] * Z_DIM,  # replaced by the frozen encoder's per-channel statistics after stage vae
    latents_std=[1.0] * Z_DIM,
    scale_factor_temporal=4,
    scale_factor_spatial=4,
)
LATENT_FRAMES = (moving_shapes.NUM_FRAMES - 1) // 4 + 1
LATENT_SIDE = shapes.IMAGE_SIZE // 4

TRANSFORMER_CONFIG = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=3,
    attention_head_dim=32,
    in_channels=Z_DIM,
    out_channels=Z_DIM,
    text_dim=TEXT_DIM,
    freq_dim=64,
    ffn_dim=256,
    num_layers=4,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=64,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    prediction_type="flow_prediction",
    use_flow_sigmas=True,
    flow_shift=3.0,
)

ALIASES = {"an": "a", **shapes.SYNONYMS}  # rewritten by the tokenizer's normaliser
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def word_ids() -> dict[str, int]:
    """Token ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2 (T5's order), then the vocabulary's words."""
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for w in moving_shapes.vocabulary():
        if w not in ALIASES:
            vocab[w] = len(vocab)
    return vocab


def build_tokenizer():
    """A word-level fast tokenizer that appends ``</s>`` (as UMT5's does); unknown words -> ``<unk>``."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = word_ids()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    aliases = [normalizers.Replace(Regex(rf"\b{a}\b"), b) for a, b in ALIASES.items()]
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(".", " "), *aliases])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, unk_token=UNK, pad_token=PAD, model_max_length=TEXT_LEN
    )


def build_text_encoder():
    """Random, frozen UMT5 encoder (deterministic from TEXT_SEED)."""
    from transformers import UMT5Config, UMT5EncoderModel

    vocab = word_ids()
    torch.manual_seed(TEXT_SEED)
    enc = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(vocab),
            d_model=TEXT_DIM,
            d_kv=16,
            d_ff=2 * TEXT_DIM,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=vocab[PAD],
            eos_token_id=vocab[EOS],
            decoder_start_token_id=vocab[PAD],
        )
    ).eval()
    enc.requires_grad_(False)
    return enc


def build_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(**VAE_CONFIG)


def build_transformer():
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**TRANSFORMER_CONFIG)


def build_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(**SCHEDULER_CONFIG)


def build_pipeline(vae, transformer):
    """A WanPipeline around trained ``vae`` and ``transformer`` and the fixed text side."""
    from diffusers import WanPipeline

    return WanPipeline(
        tokenizer=build_tokenizer(),
        text_encoder=build_text_encoder(),
        vae=vae,
        scheduler=build_scheduler(),
        transformer=transformer,
    )


@torch.no_grad()
def encode_prompts(prompts: list[str]) -> torch.Tensor:
    """``[n, TEXT_LEN, 64]`` prompt embeddings exactly as ``WanPipeline._get_t5_prompt_embeds`` makes
    them: encoder run with the attention mask, outputs past each prompt's length replaced by zeros."""
    tok, enc = build_tokenizer(), build_text_encoder()
    t = tok([p.strip() for p in prompts], padding="max_length", max_length=TEXT_LEN, truncation=True,
            add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    h = enc(t.input_ids, t.attention_mask).last_hidden_state
    return (h * t.attention_mask[..., None]).float()


def latent_stats_to_config(vae, mean: list[float], std: list[float]):
    """Write the per-channel latent statistics where WanPipeline reads them (it decodes
    ``z = x * latents_std + latents_mean``, so training uses ``x0 = (z - mean) / std``)."""
    vae.register_to_config(latents_mean=[float(m) for m in mean], latents_std=[float(s) for s in std])
    return vae
