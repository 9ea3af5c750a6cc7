"""Shared parts of the tiny pipelines: a small English vocabulary, real ``transformers`` tokenizer classes
trained on it with the ``tokenizers`` library, tiny text encoders and the 8x image VAE.

Every builder draws its weights inside :func:`seeded`, so a tiny model depends only on its seed.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any

import diffusers
import torch

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


@contextlib.contextmanager
def seeded(seed: int):
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


def clip_tokenizer():
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


def t5_tokenizer(model_max_length: int = 512):
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


def llama_tokenizer(template: str | None = None, special: tuple[str, ...] = ()):
    """Llama(-3-like) BPE tokenizer with the chat-header special tokens HunyuanVideo's template uses.

    Trained on the vocabulary plus ``template`` (HunyuanVideo's text-to-video prompt template by default);
    ``special``: more special tokens (the image-to-video template's ``<image>``).
    """
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
    template = DEFAULT_PROMPT_TEMPLATE["template"] if template is None else template
    corpus = [" ".join(_WORDS), " ".join(w.capitalize() for w in _WORDS)]
    corpus.append(template)  # special tokens are split off first, as at encoding time
    vocab, merges = _train_bpe(
        models.BPE(unk_token=unk, fuse_unk=True, byte_fallback=True),
        None,
        pre_tokenizer,
        corpus,
        [unk, bos, eos, pad, *_LLAMA_CHAT_TOKENS, *special],
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
        additional_special_tokens=[*_LLAMA_CHAT_TOKENS, *special],
        model_max_length=1024,
    )


def gemma_tokenizer(template: str = ""):
    """Gemma(-3-like) BPE tokenizer: spaces become ``▁`` and stick to the next word, no prefix space, byte
    fallback for anything outside the vocabulary (``<0x00>`` ... ``<0xFF>``). Also trained on ``template``
    (a pipeline's fixed prompt text), so its words are single tokens as with the real tokenizer."""
    from tokenizers import Regex, models, normalizers, pre_tokenizers
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]  # Gemma's ids 0-4
    pre_tokenizer = pre_tokenizers.Split(Regex(r"▁?[A-Za-z]+|[0-9]|▁|[^A-Za-z0-9▁]"), behavior="isolated")
    corpus = [" " + " ".join(_WORDS), " " + " ".join(w.capitalize() for w in _WORDS)] + ([template] if template else [])
    vocab, merges = _train_bpe(
        models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True), normalizers.Replace(" ", "▁"),
        pre_tokenizer, corpus, specials, initial_alphabet=[chr(c) for c in range(32, 127)] + ["▁"],
    )
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=1024)


# Qwen's chat markers (Qwen-Image's prompt template, FLUX.2 Klein's chat template).
_QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# A minimal Qwen3-style chat template (what FLUX.2 Klein's pipeline renders with enable_thinking=False).
_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def qwen_tokenizer(template: str = ""):
    """Qwen2 byte-level BPE tokenizer (Qwen2.5-VL / Qwen3 style) with the chat markers as special tokens.

    Trained on the vocabulary plus ``template`` (the pipeline's prompt template), word by word like Qwen2's
    pre-tokenizer, so each template word is one token as with the real tokenizer.
    """
    from tokenizers import Regex, models, pre_tokenizers
    from transformers import Qwen2Tokenizer

    split = pre_tokenizers.Split(
        Regex(r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""),
        behavior="isolated",
    )
    pre_tokenizer = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    corpus = [" ".join(_WORDS), " ".join(w.capitalize() for w in _WORDS)]
    for piece in _QWEN_SPECIAL:
        template = template.replace(piece, "\n")  # special tokens are split off first, as at encoding time
    corpus.append(template)
    vocab, merges = _train_bpe(
        models.BPE(), None, pre_tokenizer, corpus, list(_QWEN_SPECIAL),
        initial_alphabet=sorted(pre_tokenizers.ByteLevel.alphabet()),
    )
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_QWEN_SPECIAL[1:]),
        model_max_length=1024,
    )
    tokenizer.chat_template = _QWEN_CHAT_TEMPLATE
    return tokenizer


# ----------------------------------------------------------------------------------------------------------
# text encoders
# ----------------------------------------------------------------------------------------------------------


def clip_text_config(tokenizer, hidden_size: int = 32, projection_dim: int = 32):
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


def t5_encoder(tokenizer, d_model: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    with seeded(seed):
        return T5EncoderModel(T5Config(**_t5_kwargs(tokenizer, d_model))).eval()


def umt5_encoder(tokenizer, d_model: int, seed: int):
    from transformers import UMT5Config, UMT5EncoderModel

    with seeded(seed):
        return UMT5EncoderModel(UMT5Config(**_t5_kwargs(tokenizer, d_model))).eval()



def image_vae(latent_channels: int, scaling_factor: float, shift_factor: float, seed: int):
    """AutoencoderKL with the 8x spatial compression of FLUX.1 / SD3 (4 resolution levels)."""
    with seeded(seed):
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


def qwen3_encoder(tokenizer, hidden_size: int, num_layers: int, seed: int):
    """A Qwen3 causal LM (FLUX.2 Klein's text encoder) at toy width."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
        max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed):
        return Qwen3ForCausalLM(config).eval()


# ----------------------------------------------------------------------------------------------------------
# diffusers components from data
# ----------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def hunyuan_text_encoders(template: str, seed: int) -> dict[str, Any]:
    """The two text encoders HunyuanVideo-1.5 and HunyuanImage-2.1 share, tiny: a Qwen2.5-VL text model
    (3 layers: the pipelines read ``hidden_states[-3]``) over a tokenizer that splits ``template``, the
    pipeline's system-message prefix, into exactly the tokens it crops, and a ByT5 glyph encoder for quoted
    text. Returns the pipeline's ``text_encoder``/``tokenizer``/``text_encoder_2``/``tokenizer_2``."""
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    tokenizer = qwen_tokenizer(template)
    text_config = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=2048,  # the template plus the pipelines' tokenizer_max_length (1000) must fit
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed + 1):
        text_encoder = Qwen2_5_VLTextModel(text_config).eval()
    tokenizer_2 = ByT5Tokenizer()  # bytes: no vocabulary to train
    glyph_config = T5Config(
        vocab_size=len(tokenizer_2), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer_2.pad_token_id, eos_token_id=tokenizer_2.eos_token_id, decoder_start_token_id=0,
    )
    with seeded(seed + 3):
        text_encoder_2 = T5EncoderModel(glyph_config).eval()
    return {"text_encoder": text_encoder, "tokenizer": tokenizer, "text_encoder_2": text_encoder_2,
            "tokenizer_2": tokenizer_2}


def _components() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("components.json")).read_text(encoding="utf-8"))


def _build(spec: dict[str, Any], seed: int) -> Any:
    cls = getattr(diffusers, spec["class"])
    if spec.get("seed") is None:  # a scheduler: no weights
        return cls(**spec["config"])
    with seeded(seed + spec["seed"]):
        return cls(**spec["config"]).eval()


def assemble(family: str, pipeline: type, seed: int, **parts: Any) -> Any:
    """``pipeline`` of the tiny ``family``: its diffusers components built from their constructor arguments
    in ``components.json`` (as a diffusers ``config.json`` lists them), each module's weights drawn inside
    :func:`seeded` ``(seed + its offset)`` and put in eval mode, plus ``parts`` (tokenizers, text encoders,
    anything built in code)."""
    built = {name: _build(spec, seed) for name, spec in _components()[family].items()}
    return pipeline(**parts, **built)
