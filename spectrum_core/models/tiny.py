"""Tiny random-weight diffusers pipelines for every model family spectrum supports.

Why: spectrum must be developed and tested on a CPU-only machine with no access to a model hub, yet it has
to exercise the real diffusers code paths of FLUX.1, SD3.5, HunyuanVideo, Wan2.1 and Wan2.2 (pipeline
classes, ``save_pretrained``/``from_pretrained``, prompt encoding, CFG batching, ``cache_context``, the
Wan2.2 two-expert switch).  This module makes such pipelines out of nothing but configs and a seed: every
component (transformer(s), VAE, scheduler, text encoders, tokenizers) is created locally, so nothing is
ever downloaded.  The architectures keep the structure of the real models (block kinds, text encoder
kinds, scheduler settings, guidance mode) at toy widths.

Tokenizers are real ``transformers`` tokenizer classes (CLIP, T5, Llama) over a small English vocabulary
trained here with the ``tokenizers`` library; unknown words fall back to characters (or ``<unk>``), so any
English prompt works.  The Llama tokenizer splits HunyuanVideo's default prompt template into exactly the
95 prefix tokens that the pipeline's hard-coded ``crop_start=95`` expects, so the default template crops
the same way as with the real model.

Measured on the shared 2-core development CPU (torch 2.13 CPU, diffusers 0.42.1, transformers 5.24), with
``torch.set_num_threads(1)`` while other jobs kept the load average near 5; seconds:

    family    build   save   load   pipe(prompt, num_inference_steps=50, **TINY_CALL_KWARGS[family])
    flux       0.09   0.4    0.29   1.8-1.9
    sd35       0.18   0.1    0.28   1.0-1.1
    hunyuan    0.2    0.1    0.28   1.6-1.7
    wan        0.2    0.05   0.19   1.3
    wan22      0.1    0.07   0.23   1.3

"load" is ``load_tiny_pipeline`` on an existing cache directory.  The first build in a process also pays
about 3 s of one-off lazy imports.  With torch's default 2 threads the calls take about 1 s each on a
quiet machine but 5-17 s on a busy one (the two OpenMP threads wait on each other at every small op), so
tests of tiny models should run single-threaded.

Features do move along the trajectory: over 50 steps the image-stream output of the first/last
transformer block changes by 42-57 % (relative L2, first vs last step; 8 % for wan22's high-noise expert,
which only sees the first 16 steps).  Text conditioning is weakest in Wan, whose pipeline pads prompts
with zeros to ``max_sequence_length`` (default 512) and attends to them without a mask: cond and uncond
noise predictions differ by about 0.5 % (about 5 % with ``max_sequence_length=32``).  Wan2.2's expert
switch (``boundary_ratio`` 0.875 with ``flow_shift`` 3) hands over after 16 of 50 steps (7 of 20).

Requires transformers >= 5 (tokenizer classes built from an in-memory vocabulary).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import types
from typing import Any, Mapping

import diffusers
import torch

from ..hooks.families import variant, variant_names

# The tiny models: every family variant of the registry that has tiny call defaults (and a builder below).
FAMILIES: tuple[str, ...] = variant_names(tiny_only=True)

# Bump when the architecture/tokenizers change, so stale caches are not reused.
_CACHE_VERSION = "v1"

# Call defaults of each tiny pipeline (size, frames, guidance), from the family registry.
TINY_CALL_KWARGS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {name: variant(name)[1].tiny_call for name in FAMILIES}
)

# Words that become single tokens in every tiny tokenizer; anything else is spelled out in pieces.
_WORDS = tuple(
    """
a an the and or but with without of in on at to from by for over under above below near behind between into
onto through across along around inside outside is are was were be being been has have had it its this that
these those there here he she they we you i his her their our your my one two three four five many some few
all every each no not very more most less small big large tiny huge tall short long wide old young new ancient
modern beautiful pretty ugly cute happy sad angry calm quiet loud bright dark light shiny soft hard wet dry hot
cold warm cool fast slow red orange yellow green blue purple pink brown black white gray grey golden silver
colorful vivid pastel neon cat cats dog dogs puppy kitten bird birds fish horse cow sheep lion tiger bear wolf
fox rabbit mouse monkey elephant giraffe zebra panda owl eagle butterfly dragon unicorn robot robots astronaut
man woman men women boy girl child children person people family friends king queen knight wizard warrior
soldier chef doctor teacher student artist dancer player face eyes hair hand hands smile portrait body dress
shirt hat coat shoes glasses car cars truck bus train bicycle bike boat ship plane airplane rocket spaceship
house home building city town village street road bridge tower castle church temple room kitchen window door
wall floor table chair bed lamp book books cup coffee tea food pizza burger cake apple fruit bread flower
flowers tree trees forest jungle garden park field grass mountain mountains hill valley river lake sea ocean
beach island desert snow rain storm cloud clouds sky sun moon star stars space planet galaxy earth world fire
water ice smoke fog wind wave waves night day morning evening sunset sunrise summer winter spring autumn fall
painting photo photograph picture image video film movie scene shot camera close up view style art drawing
sketch illustration render rendering cartoon anime realistic photorealistic cinematic detailed highly quality
high resolution sharp focus lens lighting dramatic epic fantasy science fiction futuristic vintage retro
oil watercolor digital concept masterpiece trending background foreground landscape cityscape walking walks
running runs flying flies swimming swims jumping jumps dancing dances sitting sits standing stands sleeping
eating eats drinking playing plays riding rides holding holds looking looks reading wearing driving falling
moving moves slowly quickly gently together alone top bottom left right middle center side front back
""".split()
)

# Start of the Unicode private-use plane used for end-of-word "twin" characters while training CLIP's BPE.
_TWIN_OFFSET = 0xF0000

# HunyuanVideo's Llama chat-template markers, kept as single special tokens like in Llama-3.
_LLAMA_CHAT_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


# ----------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------


def build_tiny_pipeline(family: str, seed: int = 0) -> diffusers.DiffusionPipeline:
    """Create a tiny pipeline of ``family`` in memory, with weights drawn from ``seed``.

    Nothing is downloaded; the global torch RNG state is left untouched.
    """
    _check_family(family)
    return _BUILDERS[family](seed)


def tiny_pipeline_dir(family: str, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Directory holding the saved tiny pipeline of ``family`` (seed 0), created on first use.

    The pipeline is written to a temporary sibling directory and renamed into place, so the target is
    either absent or complete; concurrent first uses from several processes are safe (the loser of the
    rename race discards its copy and uses the winner's).
    """
    _check_family(family)
    if cache_dir is None:
        cache_dir = os.environ.get("SPECTRUM_CACHE") or pathlib.Path.home() / ".cache" / "spectrum"
    target = pathlib.Path(cache_dir).expanduser() / "tiny" / f"{family}-{_CACHE_VERSION}"
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        build_tiny_pipeline(family, seed=0).save_pretrained(staging)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process won the race (target exists and is non-empty); its copy is equivalent.
            if not _is_complete(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_tiny_pipeline(
    family: str,
    cache_dir: str | os.PathLike | None = None,
    torch_dtype: torch.dtype = torch.float32,
) -> diffusers.DiffusionPipeline:
    """Load the tiny ``family`` pipeline through ``from_pretrained``, exactly as a downloaded model loads."""
    _check_family(family)
    pipeline_class = getattr(diffusers, variant(family)[1].pipeline)
    path = tiny_pipeline_dir(family, cache_dir)
    try:  # diffusers >= 0.42 renamed the argument and warns about the old name
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return pipeline_class.from_pretrained(path, torch_dtype=torch_dtype)
    return pipeline_class.from_pretrained(path, dtype=torch_dtype)


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny pipeline family {family!r}; valid families: {', '.join(FAMILIES)}")


def _is_complete(path: pathlib.Path) -> bool:
    return (path / "model_index.json").is_file()


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch's CPU RNG for module construction without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# ----------------------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------------------


def _train_bpe(model, normalizer, pre_tokenizer, corpus: list[str], special_tokens: list[str], **trainer_kw):
    """Train a BPE model on ``corpus`` and return its (vocab, merges)."""
    from tokenizers import Tokenizer, trainers

    tok = Tokenizer(model)
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=100_000, min_frequency=1, special_tokens=special_tokens, show_progress=False, **trainer_kw
    )
    tok.train_from_iterator(corpus, trainer)
    state = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return dict(state["vocab"]), merges


def _clip_tokenizer():
    """CLIP byte-level BPE tokenizer (lower-cased, ``</w>`` word ends, 77-token context)."""
    from tokenizers import Regex, models, normalizers, pre_tokenizers
    from transformers import CLIPTokenizer

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    # Same normalizer / pre-tokenizer as transformers' CLIPTokenizer, so trained merges apply as trained.
    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    # The BPE trainer numbers "x</w>" symbols in hash order, which makes its tie-breaks (hence the merges)
    # vary between runs.  Training instead on words whose last character is replaced by a private-use
    # "twin" is equivalent and deterministic; twins are turned back into "x</w>" afterwards.
    def twin(ch: str) -> str:
        return chr(_TWIN_OFFSET + ord(ch))

    def untwin(piece: str) -> str:
        if piece and ord(piece[-1]) >= _TWIN_OFFSET:
            return piece[:-1] + chr(ord(piece[-1]) - _TWIN_OFFSET) + "</w>"
        return piece

    words = [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(" ".join(_WORDS)))]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab, merges = _train_bpe(
        models.BPE(unk_token=eos),
        None,
        pre_tokenizers.WhitespaceSplit(),
        [" ".join(w[:-1] + twin(w[-1]) for w in words)],
        [bos, eos],
        initial_alphabet=alphabet,
    )
    vocab = {untwin(piece): i for piece, i in vocab.items()}
    merges = [(untwin(a), untwin(b)) for a, b in merges]
    # Every byte must also exist as a word end, or unseen words ending in it would become <unk>.
    for ch in alphabet:
        for piece in (ch, ch + "</w>"):
            vocab.setdefault(piece, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _t5_tokenizer(model_max_length: int = 512):
    """SentencePiece-style unigram tokenizer for T5 / UMT5 (``</s>`` appended, ``<pad>`` = 0)."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    seen = {p for p, _ in pieces}
    for word in _WORDS:
        for form in (word, word.capitalize()):
            piece = "▁" + form
            if piece not in seen:
                seen.add(piece)
                pieces.append((piece, -3.0 - 0.001 * len(pieces)))
    for code in range(33, 127):  # printable ASCII as a fallback alphabet; anything else is <unk>
        pieces.append((chr(code), -10.0))
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def _llama_tokenizer():
    """Llama(-3-like) BPE tokenizer with the chat-header special tokens HunyuanVideo's template uses."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE
    from tokenizers import Regex, models, pre_tokenizers
    from transformers import LlamaTokenizer

    unk, bos, eos, pad = "<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<pad>"
    # LlamaTokenizer runs BPE over the whole metaspace-joined string; training on word/punctuation/digit
    # pieces gives Llama-3-like granularity (one token per word, per punctuation mark, per digit).
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
            pre_tokenizers.Split(Regex(r"▁?[A-Za-z]+|[0-9]|\n+|▁|[^A-Za-z0-9\n▁]"), behavior="isolated"),
        ]
    )
    template = DEFAULT_PROMPT_TEMPLATE["template"]
    corpus = [" ".join(_WORDS), " ".join(w.capitalize() for w in _WORDS)]
    corpus.append(template)  # special tokens are split off first, as at encoding time
    vocab, merges = _train_bpe(
        models.BPE(unk_token=unk, fuse_unk=True, byte_fallback=True),
        None,
        pre_tokenizer,
        corpus,
        [unk, bos, eos, pad, *_LLAMA_CHAT_TOKENS],
        initial_alphabet=[chr(c) for c in range(32, 127)] + ["\n", "\t", "▁"],
    )
    return LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=unk,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        add_bos_token=True,
        padding_side="right",  # the pipeline crops the template from the left
        additional_special_tokens=list(_LLAMA_CHAT_TOKENS),
        model_max_length=1024,
    )


# ----------------------------------------------------------------------------------------------------------
# text encoders
# ----------------------------------------------------------------------------------------------------------


def _clip_text_config(tokenizer, hidden_size: int = 32, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=projection_dim,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _t5_kwargs(tokenizer, d_model: int) -> dict[str, Any]:
    return dict(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=2 * d_model,
        num_layers=2,
        num_heads=d_model // 8,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )


def _t5_encoder(tokenizer, d_model: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    with _seeded(seed):
        return T5EncoderModel(T5Config(**_t5_kwargs(tokenizer, d_model))).eval()


def _umt5_encoder(tokenizer, d_model: int, seed: int):
    from transformers import UMT5Config, UMT5EncoderModel

    with _seeded(seed):
        return UMT5EncoderModel(UMT5Config(**_t5_kwargs(tokenizer, d_model))).eval()


# ----------------------------------------------------------------------------------------------------------
# families
# ----------------------------------------------------------------------------------------------------------


def _image_vae(latent_channels: int, scaling_factor: float, shift_factor: float, seed: int):
    """AutoencoderKL with the 8x spatial compression of FLUX.1 / SD3 (4 resolution levels)."""
    with _seeded(seed):
        return diffusers.AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            latent_channels=latent_channels,
            norm_num_groups=4,
            sample_size=64,
            scaling_factor=scaling_factor,
            shift_factor=shift_factor,
            use_quant_conv=False,
            use_post_quant_conv=False,
        ).eval()


def _build_flux(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = _clip_tokenizer(), _t5_tokenizer()
    with _seeded(seed + 1):
        text_encoder = CLIPTextModel(_clip_text_config(tokenizer)).eval()
    text_encoder_2 = _t5_encoder(tokenizer_2, d_model=32, seed=seed + 2)
    vae = _image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 3)
    with _seeded(seed):
        transformer = diffusers.FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * 4,  # 2x2-packed latents
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def _build_sd35(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = _clip_tokenizer(), _clip_tokenizer(), _t5_tokenizer(256)
    with _seeded(seed + 1):
        text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer)).eval()
    with _seeded(seed + 2):
        text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer_2)).eval()
    # The two CLIP hidden states (32 + 32) are concatenated and padded to the T5 width.
    text_encoder_3 = _t5_encoder(tokenizer_3, d_model=64, seed=seed + 3)
    vae = _image_vae(latent_channels=4, scaling_factor=1.5305, shift_factor=0.0609, seed=seed + 4)
    with _seeded(seed):
        transformer = diffusers.SD3Transformer2DModel(
            sample_size=8,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=64,
            caption_projection_dim=32,
            pooled_projection_dim=64,  # two CLIP projections of 32
            out_channels=4,
            pos_embed_max_size=32,
            qk_norm="rms_norm",
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    return diffusers.StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def _build_hunyuan(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer, tokenizer_2 = _llama_tokenizer(), _clip_tokenizer()
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,  # template (95) + max_sequence_length (256) must fit
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(seed + 1):
        text_encoder = LlamaModel(llama_config).eval()
    with _seeded(seed + 2):
        text_encoder_2 = CLIPTextModel(_clip_text_config(tokenizer_2)).eval()
    with _seeded(seed + 3):
        vae = diffusers.AutoencoderKLHunyuanVideo(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 8, 8, 8),
            layers_per_block=1,
            norm_num_groups=4,
            spatial_compression_ratio=8,
            temporal_compression_ratio=4,
        ).eval()
    with _seeded(seed):
        transformer = diffusers.HunyuanVideoTransformer3DModel(
            in_channels=4,
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=16,
            num_layers=2,
            num_single_layers=2,
            num_refiner_layers=1,
            patch_size=2,
            patch_size_t=1,
            guidance_embeds=True,
            text_embed_dim=32,
            pooled_projection_dim=32,
            rope_axes_dim=(4, 6, 6),
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0)
    return diffusers.HunyuanVideoPipeline(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
    )


def _wan_transformer(seed: int):
    with _seeded(seed):
        return diffusers.WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=16,
            out_channels=16,
            text_dim=32,
            freq_dim=64,
            ffn_dim=64,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        ).eval()


def _wan_pipeline(seed: int, transformer_2_seed: int | None) -> diffusers.DiffusionPipeline:
    tokenizer = _t5_tokenizer()
    text_encoder = _umt5_encoder(tokenizer, d_model=32, seed=seed + 1)
    with _seeded(seed + 3):
        vae = diffusers.AutoencoderKLWan(
            base_dim=8,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ).eval()
    # Wan presets: UniPC in flow-matching mode with a fixed shift.
    scheduler = diffusers.UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    two_experts = transformer_2_seed is not None
    return diffusers.WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=_wan_transformer(seed),
        transformer_2=_wan_transformer(transformer_2_seed) if two_experts else None,
        boundary_ratio=0.875 if two_experts else None,  # Wan2.2-A14B's switch point
    )


def _build_wan(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=None)


def _build_wan22(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=seed + 1000)


# One builder per tiny model (adding a family: its registry entry in hooks/families.py, a builder here).
_BUILDERS = {"flux": _build_flux, "sd35": _build_sd35, "hunyuan": _build_hunyuan, "wan": _build_wan,
             "wan22": _build_wan22}
