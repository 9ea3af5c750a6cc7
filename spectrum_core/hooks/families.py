"""Everything spectrum knows about each model family, as one registry of data.

One :class:`Family` record per transformer class says where its blocks are, what a block returns, which
module is the output head, which pipeline components may carry it (and how they hand over the steps), and
the pipelines that ship it (:class:`Variant`: pipeline class, CFG style, tiny-model call defaults, the
shipped preset a bare folder borrows its defaults from). The hooks, the presets, the request validation,
the runner, the tiny-model factory, the bench and the tests all read this one table: adding a family is
one entry here, a tiny builder in :mod:`spectrum_core.models.tiny`, and its tiny test.

Records are matched by class (``isinstance``, so a subclass of a known transformer is recognised), never
by a class-name string. Importing this module does not import torch or diffusers: the classes resolve
on first use, so the CLI's request checks stay instant.

What a block returns is read from diffusers' own ``TransformerBlockRegistry`` when it lists the block
class (:func:`block_outputs`); ``Family.block_outputs`` is only the fallback for blocks it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

__all__ = [
    "Family", "Variant", "FAMILIES", "family_for", "variant", "variant_names", "variant_for_model_index",
    "block_outputs", "blocks", "expert_names", "expert_segments", "expert_lengths", "SKIP_INPUTS", "SKIP_PLACEHOLDERS",
    "INPUT_ARGUMENTS", "STRENGTH_SKIP", "STRENGTH_KEEP", "steps_run", "variants_taking", "output_samples",
    "class_labels", "label_ids", "prompt_kwargs",
]

# CFG styles (how a pipeline runs guidance), for readers of Variant.cfg.
CFG_DISTILLED = "distilled"   # guidance is an embedding: one transformer call per step (FLUX.1-dev, HunyuanVideo)
CFG_BATCHED = "batched"       # cond and uncond as one batch of two in one call (SD3): one Spectrum state
CFG_SEPARATE = "separate"     # two calls per step in cache_context("cond"/"uncond") (Wan): one state each

# How a skipped block answers (Family.block_skip).
SKIP_INPUTS = "inputs"              # it hands its inputs through: transformer blocks keep the token layout
SKIP_PLACEHOLDERS = "placeholders"  # zero-stride stand-ins shaped like its last real output (UNet blocks)

# What a pipeline takes besides the prompt (Variant.inputs), and the call argument each one fills.
INPUT_ARGUMENTS = MappingProxyType({"image": "image", "mask": "mask_image"})

# How a pipeline with `strength` trims its steps (Variant.strength_rule): it runs the last steps of the
# schedule only, ``timesteps[begin:]``, and Spectrum plans its NFE over those (:func:`steps_run`).
STRENGTH_SKIP = "skip"  # flow-matching img2img (FLUX, SD3, Qwen-Image): skips int(n - n * strength) steps
STRENGTH_KEEP = "keep"  # the SD/SDXL img2img and inpaint pipelines: keeps int(n * strength) steps

# The cache-context names a pipeline opens around its transformer call(s) of one step, by CFG style; a
# Variant whose pipeline says something else lists its own (``Variant.contexts``).
_CONTEXTS = {CFG_DISTILLED: ("cond",), CFG_BATCHED: (), CFG_SEPARATE: ("cond", "uncond")}


@dataclass(frozen=True)
class Variant:
    """One pipeline that ships a family's transformer.

    Args:
        name: the family name presets use (``family = "wan22"`` in a preset TOML) and the tiny model's name.
        pipeline: the diffusers pipeline class.
        video: whether it makes videos.
        experts: how many denoiser components it carries (Wan2.2 A14B: two, handing over mid-run).
        cfg: its CFG style (``CFG_DISTILLED``, ``CFG_BATCHED`` or ``CFG_SEPARATE``). FluxPipeline is
            distilled but runs separate cond/uncond calls when called with ``true_cfg_scale > 1``.
        tiny_call: call keyword arguments of its tiny random model (``spectrum_core.models.tiny``); ``None``
            when no tiny builder exists yet.
        preset: the shipped preset whose defaults a bare local folder of this pipeline borrows.
        contexts: the ``cache_context`` names the pipeline opens around one step's transformer call(s), in
            call order; ``None`` means the usual ones of its CFG style (distilled: ``("cond",)``, batched:
            none, separate: ``("cond", "uncond")``). LTX-Video and CogVideoX batch CFG inside one
            ``"cond_uncond"`` context; Chroma opens none (its branches are told apart by
            ``Family.branch_argument``). Each name is one Spectrum state.
        inputs: what the pipeline takes besides the prompt, each required: ``"image"`` (img2img, edit,
            image-to-video) and ``"mask"`` (inpaint); :data:`INPUT_ARGUMENTS` names their call arguments.
        arguments: the call argument each input fills where the pipeline names it otherwise (Wan VACE takes the
            image as ``reference_images``); ``None``: :data:`INPUT_ARGUMENTS`.
        strength: the pipeline's default ``strength`` when it takes one (img2img, inpaint), else ``None``.
        strength_rule: how ``strength`` trims the steps (``STRENGTH_SKIP`` or ``STRENGTH_KEEP``).
        batches: whether one call makes several samples (a list of prompts, one generator each). Cosmos 3's
            pipeline makes one sample per call (it keeps the first prompt of a list): its jobs run one call each.
        frames_argument: the call argument that takes a video's number of frames (LattePipeline's is
            ``video_length``); its tiny call names the frames the same way.
        prompt_argument: the call argument the prompt becomes. ``"prompt"``, or ``"class_labels"`` for a
            class-conditional pipeline (DiT): the prompt is then one of the checkpoint's class labels (its
            ``id2label``, each entry's comma-separated names), mapped to its class id as the pipeline's
            ``get_label_ids`` does (:func:`label_ids`).
        sized: whether the call takes ``height`` and ``width``; DiT's pipeline makes its transformer's
            ``sample_size`` only (its tiny call and presets give none, and its presets are ``fixed_size``).
    """

    name: str
    pipeline: str
    video: bool
    cfg: str
    preset: str
    experts: int = 1
    tiny_call: Mapping[str, Any] | None = None
    contexts: tuple[str, ...] | None = None
    inputs: tuple[str, ...] = ()
    strength: float | None = None
    strength_rule: str = STRENGTH_SKIP
    batches: bool = True
    arguments: Mapping[str, str] | None = None
    frames_argument: str = "num_frames"
    prompt_argument: str = "prompt"
    sized: bool = True

    def __post_init__(self) -> None:
        if self.tiny_call is not None:
            object.__setattr__(self, "tiny_call", MappingProxyType(dict(self.tiny_call)))
        object.__setattr__(self, "arguments", MappingProxyType({**INPUT_ARGUMENTS, **(self.arguments or {})}))
        if self.contexts is None:
            object.__setattr__(self, "contexts", _CONTEXTS[self.cfg])

    @property
    def calls_per_step(self) -> int:
        """Transformer calls the pipeline makes per step (with its tiny call's guidance): one per cache
        context it opens, else two for separate CFG calls without contexts (Chroma) and one otherwise."""
        if self.contexts:
            return len(self.contexts)
        return 2 if self.cfg == CFG_SEPARATE else 1


@dataclass(frozen=True)
class Family:
    """One transformer class's layout and the pipelines that use it.

    Args:
        name: short name used in messages.
        transformer: the diffusers transformer class's name, resolved on first use (:attr:`transformer_class`).
        block_stacks: attributes of the transformer holding its blocks, in call order: an ``nn.ModuleList``
            or a single block (the UNet's ``mid_block``). Every block in them is skipped on a forecast step.
        head: the output-head module whose first argument is the last block's image/video-token output —
            the tensor Spectrum forecasts (docs/method.md, "What is forecast"). It runs on every step with the
            current timestep embedding.
        side_heads: further output heads, of streams the blocks carry besides the image/video tokens and
            the pipeline uses (LTX-2's audio: ``audio_norm_out``). A skipped block skips those streams too,
            so each side head's input is forecast as well, by a forecaster of its own per branch.
        variants: the pipelines that ship this transformer.
        components: pipeline attributes that may hold this transformer, in the order they take over the
            steps (Wan2.2's high-noise ``transformer`` then low-noise ``transformer_2``).
        handover: the pipeline-config field that splits the steps between components (``boundary_ratio``:
            the hand-over is at the first timestep below ``boundary_ratio * num_train_timesteps``).
        block_outputs: what a block returns, by argument name, for block classes diffusers'
            TransformerBlockRegistry does not list; a skipped block returns its inputs of those names.
        stack_outputs: the same, per block stack, taking precedence over the registry: where the stacks'
            unlisted blocks differ (Chroma's single-stream blocks return only ``hidden_states``) or the
            registry's argument names do not fit (Z-Image's blocks take ``x``).
        branch_argument: for a pipeline that makes separate cond/uncond calls without opening a cache
            context (Chroma), the transformer argument that tells the branches apart: the pipeline passes
            the same prompt-embedding tensor on every step of one branch, so each distinct tensor (by
            identity, within one call of the pipeline) is one branch, named ``cond`` then ``uncond`` in the
            order they first appear.
        block_skip: how a skipped block answers. ``SKIP_INPUTS``: it returns its inputs named by its
            layout (transformer blocks map tokens to tokens). ``SKIP_PLACEHOLDERS``: it returns zero-stride
            stand-ins (no memory) shaped like its output on the last real step — for blocks that change
            resolution (the UNet's down/mid/up blocks), whose outputs on a forecast step only feed other
            skipped blocks and the head, whose input is replaced by the forecast.
    """

    name: str
    transformer: str
    block_stacks: tuple[str, ...]
    variants: tuple[Variant, ...]
    head: str = "norm_out"
    side_heads: tuple[str, ...] = ()
    components: tuple[str, ...] = ("transformer",)
    handover: str | None = None
    block_outputs: tuple[str, ...] = ("encoder_hidden_states", "hidden_states")
    stack_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    branch_argument: str | None = None
    block_skip: str = SKIP_INPUTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "stack_outputs", MappingProxyType(dict(self.stack_outputs)))

    @property
    def transformer_class(self) -> type | None:
        """The transformer class, or ``None`` when the installed diffusers does not have it."""
        import diffusers

        return getattr(diffusers, self.transformer, None)


_TINY_64 = {"height": 64, "width": 64}
_IMAGE, _INPAINT = ("image",), ("image", "mask")

FAMILIES: tuple[Family, ...] = (
    Family("flux", "FluxTransformer2DModel", ("transformer_blocks", "single_transformer_blocks"), (
        # FLUX.1-dev style: guidance-distilled, guidance is an embedding, one transformer call per step.
        Variant("flux", "FluxPipeline", video=False, cfg=CFG_DISTILLED, preset="flux",
                tiny_call={**_TINY_64, "guidance_scale": 3.5}),
        # Image-to-image and inpaint: the same transformer from a partly noised input image, over the last
        # steps only (strength); no cache context, one call per step.
        Variant("flux-img2img", "FluxImg2ImgPipeline", video=False, cfg=CFG_DISTILLED, preset="flux-img2img",
                contexts=(), tiny_call={**_TINY_64, "guidance_scale": 3.5}, inputs=_IMAGE, strength=0.6),
        Variant("flux-inpaint", "FluxInpaintPipeline", video=False, cfg=CFG_DISTILLED, preset="flux-inpaint",
                contexts=(), tiny_call={**_TINY_64, "guidance_scale": 3.5}, inputs=_INPAINT, strength=0.6),
        # Kontext (edit): the input image's tokens ride along the latents' in one sequence; the head's input
        # holds both and the pipeline keeps the latents' part. With true_cfg_scale > 1 it makes cond and
        # uncond calls without a cache context, told apart by their prompt embeddings (branch_argument).
        # The tiny call keeps the 64x64 input as it is (the pipeline would resize it to a ~1 MP resolution).
        Variant("flux-kontext", "FluxKontextPipeline", video=False, cfg=CFG_DISTILLED, preset="flux-kontext",
                contexts=(), tiny_call={**_TINY_64, "guidance_scale": 2.5, "max_area": 4096, "_auto_resize": False},
                inputs=_IMAGE),
        # Fill (inpaint/outpaint): the masked image's latents and the mask ride along each token's channels
        # (a transformer of 384 input channels); one call per step, no cache context, strength 1 by default.
        Variant("flux-fill", "FluxFillPipeline", video=False, cfg=CFG_DISTILLED, preset="flux-fill", contexts=(),
                tiny_call={**_TINY_64, "guidance_scale": 30.0}, inputs=_INPAINT, strength=1.0),
    ), branch_argument="encoder_hidden_states"),
    Family("sd3", "SD3Transformer2DModel", ("transformer_blocks",), (
        # SD3.5: real CFG, cond and uncond run as one batch of 2.
        Variant("sd35", "StableDiffusion3Pipeline", video=False, cfg=CFG_BATCHED, preset="sd35",
                tiny_call={**_TINY_64, "guidance_scale": 4.5}),
        Variant("sd35-img2img", "StableDiffusion3Img2ImgPipeline", video=False, cfg=CFG_BATCHED,
                preset="sd35-img2img", tiny_call={**_TINY_64, "guidance_scale": 4.5}, inputs=_IMAGE, strength=0.6),
        # Inpaint with SD3's own 16-channel transformer: the pipeline blends the noised input image in outside
        # the mask after every step (a 33-channel transformer would take mask and masked image as input).
        Variant("sd35-inpaint", "StableDiffusion3InpaintPipeline", video=False, cfg=CFG_BATCHED,
                preset="sd35-inpaint", tiny_call={**_TINY_64, "guidance_scale": 4.5}, inputs=_INPAINT, strength=0.6),
    )),
    Family("hunyuan", "HunyuanVideoTransformer3DModel", ("transformer_blocks", "single_transformer_blocks"), (
        # HunyuanVideo: embedded guidance, one call per step.
        Variant("hunyuan", "HunyuanVideoPipeline", video=True, cfg=CFG_DISTILLED, preset="hunyuan",
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 6.0}),
        # Image-to-video (HunyuanVideo-I2V, token replace): the image's latents are the first latent frame,
        # kept by the pipeline, whose tokens the token-replace blocks modulate with the timestep-0 embedding;
        # the head sees every frame's tokens and the pipeline steps frames 1: only. Embedded guidance, one call
        # per step, no cache context; with true_cfg_scale > 1 two calls, told apart by their prompt embeddings
        # (branch_argument; HunyuanVideoPipeline always opens a context, so it is unaffected).
        Variant("hunyuan-i2v", "HunyuanVideoImageToVideoPipeline", video=True, cfg=CFG_DISTILLED, preset="hunyuan-i2v",
                contexts=(), tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 6.0}, inputs=_IMAGE),
    ), block_outputs=("hidden_states", "encoder_hidden_states"), branch_argument="encoder_hidden_states"),
    Family("wan", "WanTransformer3DModel", ("blocks",), (
        # Wan2.1: CFG as two calls per step, in cache_context("cond") / ("uncond").
        Variant("wan", "WanPipeline", video=True, cfg=CFG_SEPARATE, preset="wan",
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 5.0}),
        # Wan2.2-A14B: high-noise expert with guidance_scale, low-noise expert with guidance_scale_2.
        Variant("wan22", "WanPipeline", video=True, cfg=CFG_SEPARATE, preset="wan22", experts=2,
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 4.0, "guidance_scale_2": 3.0}),
        # Wan2.2-TI2V-5B: one transformer over the 48-channel, 16x VAE; per-token timesteps (expand_timesteps).
        Variant("wan22-5b", "WanPipeline", video=True, cfg=CFG_SEPARATE, preset="wan22-5b",
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 5.0}),
        # Image-to-video: the image's latents (and a first-frame mask) ride along the latents' channels (36 in).
        # Wan2.1 I2V adds CLIP image tokens to every block's cross-attention; Wan2.2 I2V A14B has no image
        # encoder and two experts. Both run CFG as two calls in cond/uncond contexts, like WanPipeline.
        Variant("wan-i2v", "WanImageToVideoPipeline", video=True, cfg=CFG_SEPARATE, preset="wan-i2v",
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 5.0}, inputs=_IMAGE),
        Variant("wan22-i2v", "WanImageToVideoPipeline", video=True, cfg=CFG_SEPARATE, preset="wan22-i2v", experts=2,
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 3.5}, inputs=_IMAGE),
    ), components=("transformer", "transformer_2"), handover="boundary_ratio", block_outputs=("hidden_states",)),
    # Qwen-Image: true CFG (true_cfg_scale with a negative prompt) as two calls in cond/uncond contexts.
    Family("qwenimage", "QwenImageTransformer2DModel", ("transformer_blocks",), (
        Variant("qwenimage", "QwenImagePipeline", video=False, cfg=CFG_SEPARATE, preset="qwenimage",
                tiny_call={**_TINY_64, "true_cfg_scale": 4.0, "negative_prompt": " "}),
        Variant("qwenimage-img2img", "QwenImageImg2ImgPipeline", video=False, cfg=CFG_SEPARATE,
                preset="qwenimage-img2img", tiny_call={**_TINY_64, "true_cfg_scale": 4.0, "negative_prompt": " "},
                inputs=_IMAGE, strength=0.6),
        Variant("qwenimage-inpaint", "QwenImageInpaintPipeline", video=False, cfg=CFG_SEPARATE,
                preset="qwenimage-inpaint", tiny_call={**_TINY_64, "true_cfg_scale": 4.0, "negative_prompt": " "},
                inputs=_INPAINT, strength=0.6),
        # Edit: the input image's latents (resized to about 1 MP) ride along the latents' tokens in one sequence,
        # as with Kontext; the head's input holds both and the pipeline keeps the latents' part. The prompt is
        # encoded with the image by Qwen2.5-VL. Plus takes several input images (their tokens in turn).
        # No tiny model: transformers cannot build their Qwen2VLProcessor without torchvision (see
        # models/tiny/qwenimage.py); their tests run the pipelines on prompt embeddings.
        Variant("qwenimage-edit", "QwenImageEditPipeline", video=False, cfg=CFG_SEPARATE, preset="qwenimage-edit",
                inputs=_IMAGE),
        Variant("qwenimage-edit-plus", "QwenImageEditPlusPipeline", video=False, cfg=CFG_SEPARATE,
                preset="qwenimage-edit-plus", inputs=_IMAGE),
    )),
    # FLUX.2: dev (Mistral-3 text encoder, embedded guidance, one call per step) and Klein (Qwen3 text
    # encoder; the base models run real CFG in cond/uncond contexts, the step-distilled ones one call).
    Family("flux2", "Flux2Transformer2DModel", ("transformer_blocks", "single_transformer_blocks"), (
        Variant("flux2", "Flux2Pipeline", video=False, cfg=CFG_DISTILLED, preset="flux2", contexts=(),
                tiny_call={**_TINY_64, "guidance_scale": 4.0}),
        Variant("flux2-klein", "Flux2KleinPipeline", video=False, cfg=CFG_SEPARATE, preset="flux2-klein",
                tiny_call={**_TINY_64, "guidance_scale": 4.0}),
    )),
    # LTX-Video: cond and uncond as one batch of two, inside one cache_context("cond_uncond").
    Family("ltx", "LTXVideoTransformer3DModel", ("transformer_blocks",), (
        Variant("ltx", "LTXPipeline", video=True, cfg=CFG_BATCHED, preset="ltx", contexts=("cond_uncond",),
                tiny_call={**_TINY_64, "num_frames": 9, "guidance_scale": 3.0}),
        # Image-to-video: the first frame's latents are the input image's, kept by a per-token timestep.
        Variant("ltx-i2v", "LTXImageToVideoPipeline", video=True, cfg=CFG_BATCHED, preset="ltx-i2v",
                contexts=("cond_uncond",), tiny_call={**_TINY_64, "num_frames": 9, "guidance_scale": 3.0},
                inputs=_IMAGE),
    ), block_outputs=("hidden_states",)),
    # CogVideoX: batched CFG in cache_context("cond_uncond"); the last block's video tokens enter norm_final.
    Family("cogvideox", "CogVideoXTransformer3DModel", ("transformer_blocks",), (
        Variant("cogvideox", "CogVideoXPipeline", video=True, cfg=CFG_BATCHED, preset="cogvideox",
                contexts=("cond_uncond",), tiny_call={**_TINY_64, "num_frames": 9, "guidance_scale": 6.0}),
    ), head="norm_final", block_outputs=("hidden_states", "encoder_hidden_states")),
    # Chroma: FLUX.1-schnell-derived, real CFG as two calls per step that open no cache context; the
    # branches are told apart by the prompt embeddings the pipeline passes (prompt vs negative prompt).
    Family("chroma", "ChromaTransformer2DModel", ("transformer_blocks", "single_transformer_blocks"), (
        Variant("chroma", "ChromaPipeline", video=False, cfg=CFG_SEPARATE, preset="chroma", contexts=(),
                tiny_call={**_TINY_64, "guidance_scale": 3.0}),
    ), stack_outputs={"single_transformer_blocks": ("hidden_states",)}, branch_argument="encoder_hidden_states"),
    # Z-Image: image and caption streams refined apart, then one unified stream (image tokens first) into
    # the final layer; CFG as a batch of two in one call with no cache context. The head's input carries the
    # caption tokens too (their outputs are dropped by unpatchify), so they are forecast along.
    Family("zimage", "ZImageTransformer2DModel", ("noise_refiner", "context_refiner", "layers"), (
        Variant("zimage", "ZImagePipeline", video=False, cfg=CFG_BATCHED, preset="zimage",
                tiny_call={**_TINY_64, "guidance_scale": 4.0}),
    ), head="all_final_layer.2-1", stack_outputs={s: ("x",) for s in ("noise_refiner", "context_refiner", "layers")}),
    # The SD/SDXL UNet, as the official Spectrum code does it: every down, mid and up block is skipped and
    # the last up block's output, entering conv_norm_out, is forecast. Its blocks change resolution, so a
    # skipped block answers with placeholders; SDXL batches cond and uncond, opening no cache context.
    Family("unet", "UNet2DConditionModel", ("down_blocks", "mid_block", "up_blocks"), (
        Variant("sdxl", "StableDiffusionXLPipeline", video=False, cfg=CFG_BATCHED, preset="sdxl",
                tiny_call={**_TINY_64, "guidance_scale": 5.0}),
        Variant("sdxl-img2img", "StableDiffusionXLImg2ImgPipeline", video=False, cfg=CFG_BATCHED,
                preset="sdxl-img2img", tiny_call={**_TINY_64, "guidance_scale": 5.0}, inputs=_IMAGE, strength=0.3,
                strength_rule=STRENGTH_KEEP),
        # A 4-channel UNet blends the mask in at every step; the 9-channel inpainting UNet takes it as input.
        Variant("sdxl-inpaint", "StableDiffusionXLInpaintPipeline", video=False, cfg=CFG_BATCHED,
                preset="sdxl-inpaint", tiny_call={**_TINY_64, "guidance_scale": 5.0}, inputs=_INPAINT,
                strength=0.9999, strength_rule=STRENGTH_KEEP),
    ), head="conv_norm_out", components=("unet",), block_skip=SKIP_PLACEHOLDERS, block_outputs=()),
    # HunyuanVideo-1.5: one stack of dual-stream blocks; real CFG run by the pipeline's guider as two calls
    # per step, in cache_context("pred_cond") / ("pred_uncond") (the guider's identifiers). Its blocks are not
    # in diffusers' registry: they take and return (hidden_states, encoder_hidden_states).
    Family("hunyuan15", "HunyuanVideo15Transformer3DModel", ("transformer_blocks",), (
        Variant("hunyuan15", "HunyuanVideo15Pipeline", video=True, cfg=CFG_SEPARATE, preset="hunyuan15",
                contexts=("pred_cond", "pred_uncond"), tiny_call={**_TINY_64, "num_frames": 5}),
    ), block_outputs=("hidden_states", "encoder_hidden_states")),
    # LTX-2: video and audio streams through the same blocks, each into its own head (norm_out: the video the
    # pipeline writes; audio_norm_out: its soundtrack). A skipped block skips both, so both heads' inputs are
    # forecast (side_heads). Up to three calls per step, each in its own context: CFG as a batch of two in
    # "cond_uncond", spatio-temporal guidance in "uncond_stg" (stg_scale > 0) and modality-isolation guidance
    # in "uncond_modality" (modality_scale > 1); the pipeline's defaults turn all three on.
    Family("ltx2", "LTX2VideoTransformer3DModel", ("transformer_blocks",), (
        Variant("ltx2", "LTX2Pipeline", video=True, cfg=CFG_BATCHED, preset="ltx2",
                contexts=("cond_uncond", "uncond_stg", "uncond_modality"),
                tiny_call={**_TINY_64, "num_frames": 9, "frame_rate": 8, "guidance_scale": 3.0,
                           "max_sequence_length": 64}),
    ), side_heads=("audio_norm_out",), block_outputs=("hidden_states", "audio_hidden_states")),
    # CogView4: real CFG as two calls per step in cache_context("cond") / ("uncond"); registry-listed blocks
    # that return (hidden_states, encoder_hidden_states); the last block's image tokens enter norm_out.
    Family("cogview4", "CogView4Transformer2DModel", ("transformer_blocks",), (
        Variant("cogview4", "CogView4Pipeline", video=False, cfg=CFG_SEPARATE, preset="cogview4",
                tiny_call={**_TINY_64, "guidance_scale": 3.5}),
    )),
    # Lumina-Image 2.0: caption and image tokens refined apart, then one joint stream (caption tokens first)
    # into norm_out, which projects too; its input carries the caption tokens (unpatchify drops them), so
    # they are forecast along, as with Z-Image. Real CFG as two calls per step that open no cache context:
    # the branches are told apart by the prompt embeddings each gets (like Chroma). With cfg_trunc_ratio < 1
    # the uncond call stops after that fraction of the steps; its branch simply sees fewer calls.
    Family("lumina2", "Lumina2Transformer2DModel", ("context_refiner", "noise_refiner", "layers"), (
        Variant("lumina2", "Lumina2Pipeline", video=False, cfg=CFG_SEPARATE, preset="lumina2", contexts=(),
                tiny_call={**_TINY_64, "guidance_scale": 4.0}),
    ), block_outputs=("hidden_states",), branch_argument="encoder_hidden_states"),
    # PixArt-Sigma: BasicTransformerBlock blocks (registry-listed: they return hidden_states), CFG as one
    # batch of two with no cache context (one state, like SD3); the last block's image tokens enter norm_out.
    # The tiny transformer's sample_size has no aspect-ratio table, so its call turns the binning off.
    Family("pixart", "PixArtTransformer2DModel", ("transformer_blocks",), (
        Variant("pixart-sigma", "PixArtSigmaPipeline", video=False, cfg=CFG_BATCHED, preset="pixart-sigma",
                tiny_call={**_TINY_64, "guidance_scale": 4.5, "use_resolution_binning": False,
                           "clean_caption": False, "max_sequence_length": 64}),
    )),
    # Wan VACE: a Wan transformer of its own class whose vace blocks run first, on the control video's tokens
    # (the masked video's latents and the mask: 96 channels), each returning a hint that the pipeline's blocks
    # add in after their layer and the control stream for the next vace block; both stacks are skipped on a
    # forecast step (a skipped vace block hands back its hidden_states as the hint, which only feeds skipped
    # blocks and the head, whose input is the forecast). CFG as two calls in cond/uncond contexts; two experts
    # possible (boundary_ratio) like Wan2.2. Here the input image is a reference image (subject to video): its
    # latent frame leads the sequence, the head's input holds it and the pipeline drops it at the end.
    Family("wan-vace", "WanVACETransformer3DModel", ("vace_blocks", "blocks"), (
        Variant("wan-vace", "WanVACEPipeline", video=True, cfg=CFG_SEPARATE, preset="wan-vace",
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 5.0}, inputs=_IMAGE,
                arguments={"image": "reference_images"}),
    ), components=("transformer", "transformer_2"), handover="boundary_ratio", block_outputs=("hidden_states",),
        stack_outputs={"vace_blocks": ("hidden_states", "control_hidden_states")}),
    # Latte: spatial and temporal BasicTransformerBlock stacks, called interleaved (spatial i, then temporal i,
    # the latter over each patch's frames), all registry-listed as returning hidden_states and all skipped;
    # CFG as one batch of two with no cache context (one state). norm_out gets the video tokens as (batch x
    # frames, patches, width). The temporal position table is as long as the trained clip (16 frames), so the
    # frame count is fixed; the pipeline names it video_length.
    Family("latte", "LatteTransformer3DModel", ("transformer_blocks", "temporal_transformer_blocks"), (
        Variant("latte", "LattePipeline", video=True, cfg=CFG_BATCHED, preset="latte", frames_argument="video_length",
                tiny_call={**_TINY_64, "video_length": 5, "guidance_scale": 7.5, "clean_caption": False}),
    )),
    # DiT: class-conditional on ImageNet's labels, no text; BasicTransformerBlock blocks (registry-listed:
    # hidden_states); CFG as one batch of two (the labels, then the null class 1000) with no cache context.
    # norm_out gets the image tokens (then a timestep- and class-modulated proj_out_2). The prompt is a
    # class label; the pipeline takes no size, no step callback and no latent output.
    Family("dit", "DiTTransformer2DModel", ("transformer_blocks",), (
        Variant("dit", "DiTPipeline", video=False, cfg=CFG_BATCHED, preset="dit", prompt_argument="class_labels",
                sized=False, tiny_call={"guidance_scale": 4.0}),
    )),
    # Mochi: cond and uncond as one batch of two, inside one cache_context("cond_uncond"), like LTX-Video.
    Family("mochi", "MochiTransformer3DModel", ("transformer_blocks",), (
        Variant("mochi", "MochiPipeline", video=True, cfg=CFG_BATCHED, preset="mochi", contexts=("cond_uncond",),
                tiny_call={**_TINY_64, "num_frames": 7, "guidance_scale": 4.5}),
    )),
    # HunyuanImage-2.1: dual- then single-stream blocks (both return hidden_states, encoder_hidden_states);
    # real CFG run by the pipeline's guider (AdaptiveProjectedMixGuidance: CFG, then adaptive projected
    # guidance from its 6th step) as two calls per step in cache_context("pred_cond") / ("pred_uncond").
    Family("hunyuanimage", "HunyuanImageTransformer2DModel", ("transformer_blocks", "single_transformer_blocks"), (
        Variant("hunyuanimage", "HunyuanImagePipeline", video=False, cfg=CFG_SEPARATE, preset="hunyuanimage",
                contexts=("pred_cond", "pred_uncond"), tiny_call={**_TINY_64, "negative_prompt": ""}),
    )),
    # Bria (BRIA-3.2): FLUX-style dual- then single-stream blocks, both returning (encoder_hidden_states,
    # hidden_states): diffusers' registry lists the dual-stream block as returning hidden_states alone and
    # not the single-stream one, so the layout is the family's word for both stacks. Real CFG as one batch
    # of two (uncond first) with no cache context.
    Family("bria", "BriaTransformer2DModel", ("transformer_blocks", "single_transformer_blocks"), (
        Variant("bria", "BriaPipeline", video=False, cfg=CFG_BATCHED, preset="bria",
                tiny_call={**_TINY_64, "guidance_scale": 5.0}),
    ), stack_outputs={s: ("encoder_hidden_states", "hidden_states")
                      for s in ("transformer_blocks", "single_transformer_blocks")}),
    # Kandinsky 5.0 T2V: text blocks refine the prompt embeddings, then visual (decoder) blocks cross-attend
    # to them; the visual tokens, (batch, frames, height, width, width of the model) after unflattening, enter
    # out_layer. Both stacks are skipped: the text stream only feeds the visual blocks. CFG as two calls per
    # step (cond, then uncond) that open no cache context, told apart by their prompt embeddings.
    Family("kandinsky5", "Kandinsky5Transformer3DModel", ("text_transformer_blocks", "visual_transformer_blocks"), (
        Variant("kandinsky5", "Kandinsky5T2VPipeline", video=True, cfg=CFG_SEPARATE, preset="kandinsky5", contexts=(),
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 5.0}),
    ), head="out_layer", stack_outputs={"text_transformer_blocks": ("x",)}, branch_argument="encoder_hidden_states"),
    # Motif-Video: dual-stream, then single-stream blocks whose last ones are decoder layers (they re-read the
    # embedded video tokens with the encoder's output as context); every kind returns (hidden_states,
    # encoder_hidden_states). Real CFG by the pipeline's guider as two calls per step in
    # cache_context("pred_cond") / ("pred_uncond").
    Family("motif", "MotifVideoTransformer3DModel", ("transformer_blocks", "single_transformer_blocks"), (
        Variant("motif", "MotifVideoPipeline", video=True, cfg=CFG_SEPARATE, preset="motif",
                contexts=("pred_cond", "pred_uncond"), tiny_call={**_TINY_64, "num_frames": 5}),
    )),
    # Cosmos 3 (omni): the transformer is a vision-language text model whose decoder layers carry two
    # streams, the prompt's tokens (und_seq) and the generated modalities' tokens (gen_seq: the video's, in
    # text-to-video); each layer returns (und_seq, gen_seq) and all are skipped. The head is the generation
    # stream's final norm (norm_moe_gen), whose input is the video tokens, packed without a batch axis; the
    # timestep enters only through the input tokens, so the head has no timestep modulation. CFG as two calls
    # per step in cache_context("cond") / ("uncond"), each giving the step index.
    Family("cosmos3", "Cosmos3OmniTransformer", ("layers",), (
        Variant("cosmos3", "Cosmos3OmniPipeline", video=True, cfg=CFG_SEPARATE, preset="cosmos3", batches=False,
                tiny_call={**_TINY_64, "num_frames": 5, "guidance_scale": 6.0}),
    ), head="norm_moe_gen"),
)

# The prompt-only pipelines first, then those that also take an image (so listings read as before).
_VARIANTS: Mapping[str, tuple[Family, Variant]] = MappingProxyType(
    {v.name: (f, v) for image in (False, True) for f in FAMILIES for v in f.variants if bool(v.inputs) == image}
)


def variants_taking(what: str) -> tuple[str, ...]:
    """The variant names whose pipeline takes ``what`` (``"image"``, ``"mask"`` or ``"strength"``)."""
    if what == "strength":
        return tuple(name for name, (_, v) in _VARIANTS.items() if v.strength is not None)
    return tuple(name for name, (_, v) in _VARIANTS.items() if what in v.inputs)


def steps_run(v: Variant, num_steps: int, strength: float | None = None) -> int:
    """How many of ``num_steps`` the pipeline of ``v`` runs with ``strength`` (the last ones of its
    schedule), computed as the pipeline does: all of them for a pipeline without ``strength``."""
    if v.strength is None:
        return num_steps
    strength = v.strength if strength is None else strength
    if v.strength_rule == STRENGTH_KEEP:
        return min(int(num_steps * strength), num_steps)
    return num_steps - int(max(num_steps - min(num_steps * strength, num_steps), 0))


def output_samples(result: Any) -> Any:
    """The samples a pipeline call returned, one per prompt: ``result.frames`` (video pipelines),
    ``result.images``, or Cosmos 3's ``result.video``, the one sample of its call, which this gives a batch
    axis when it has none (decoded: frames, height, width, channels; its latents already have one)."""
    for name in ("frames", "images"):
        if hasattr(result, name):
            return getattr(result, name)
    video = result.video
    if isinstance(video, list) or getattr(video, "ndim", 5) == 4:  # PIL frames, or one decoded video
        return [video] if isinstance(video, list) else video[None]
    return video


def class_labels(id2label: Mapping[Any, str] | None) -> dict[str, int]:
    """A class-conditional checkpoint's labels (its pipeline's ``id2label``, as model_index.json holds it),
    each comma-separated name of a class mapped to its id, as DiTPipeline builds its ``labels``."""
    labels = {}
    for key, value in (id2label or {}).items():
        for label in value.split(","):
            labels[label.strip()] = int(key)
    return dict(sorted(labels.items()))


def label_ids(labels: Mapping[str, int], prompts: Any) -> list[int]:
    """The class ids of ``prompts`` (one label or a list), as DiTPipeline.get_label_ids maps them; a
    ValueError of one line (with the nearest labels) for a prompt that is not one of ``labels``."""
    import difflib

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for prompt in prompts:
        if prompt not in labels:
            near = difflib.get_close_matches(prompt, list(labels), n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(repr(n) for n in near)}" if near else ""
            raise ValueError(f"{prompt!r} is not one of this model's {len(labels)} class labels (the prompt of a "
                             f"class-conditional model names one of its classes, e.g. {next(iter(labels), '')!r}){hint}.")
    return [labels[p] for p in prompts]


def prompt_kwargs(v: Variant, prompt: Any, labels: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The call arguments the prompt (or a list of prompts) of a call of ``v``'s pipeline becomes: ``prompt``,
    or a class-conditional pipeline's class ids from its ``labels`` (``pipe.labels``)."""
    if v.prompt_argument == "prompt":
        return {"prompt": prompt}
    if labels is None:
        raise ValueError(f"{v.pipeline} takes {v.prompt_argument}: the prompt needs the pipeline's labels")
    return {v.prompt_argument: label_ids(labels, prompt)}


def variant_names(tiny_only: bool = False) -> tuple[str, ...]:
    """Every variant name (what a preset's ``family`` may say), or only those with a tiny model."""
    return tuple(name for name, (_, v) in _VARIANTS.items() if not tiny_only or v.tiny_call is not None)


def variant(name: str) -> tuple[Family, Variant]:
    """The family and variant a preset's ``family = NAME`` refers to; KeyError listing the valid names."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; valid: {', '.join(_VARIANTS)}") from None


def variant_for_model_index(index: Mapping[str, Any]) -> Variant | None:
    """The variant a diffusers folder's model_index.json describes (its pipeline class, and for pipelines
    with several denoisers how many it fills), or ``None`` for a pipeline no family ships."""
    cls = index.get("_class_name")
    for family in FAMILIES:
        filled = sum(1 for c in family.components if (index.get(c) or [None])[0] is not None)
        for v in family.variants:
            if v.pipeline == cls and v.experts == max(filled, 1):
                return v
    return None


def family_for(transformer: Any) -> Family:
    """The family of ``transformer`` (matched by class, subclasses included), or a ValueError naming the
    supported classes."""
    for family in FAMILIES:
        cls = family.transformer_class
        if cls is not None and isinstance(transformer, cls):
            return family
    raise ValueError(
        f"Spectrum does not know the transformer class {type(transformer).__name__}. Supported: "
        f"{', '.join(sorted(f.transformer for f in FAMILIES))}. To add one, give it a Family record in "
        "spectrum_core/hooks/families.py (its block stacks, the head that receives the last block's "
        "image tokens, its pipelines) and a tiny builder in spectrum_core/models/tiny/"
    )


def blocks(denoiser: Any, family: Family) -> list[tuple[str, Any]]:
    """Every block Spectrum skips in ``denoiser``, with the name of its stack, in call order."""
    import torch

    found = []
    for stack in family.block_stacks:
        held = getattr(denoiser, stack, None)
        if held is None:
            continue
        members = list(held) if isinstance(held, (torch.nn.ModuleList, torch.nn.Sequential)) else [held]
        found.extend((stack, block) for block in members)
    return found


def block_outputs(block: Any, family: Family, stack: str | None = None) -> tuple[str, ...]:
    """The names of what ``block`` (of the family's block stack ``stack``) returns, in order: a skipped
    block returns its inputs of these names.

    Read from diffusers' ``TransformerBlockRegistry`` (which diffusers' own block caches use) when it lists
    the block's class, unless the family declares ``stack_outputs[stack]``; else ``block_outputs``. The
    registry lives in a private diffusers module; this is the one place that reads it, and
    tests/test_hooks.py fails if it moves.
    """
    from diffusers.hooks._helpers import TransformerBlockRegistry

    if stack in family.stack_outputs:  # the family's word wins: Z-Image's blocks take `x`, not `hidden_states`
        return family.stack_outputs[stack]
    try:
        meta = TransformerBlockRegistry.get(type(block))
    except ValueError:  # a block class diffusers does not list
        return family.block_outputs
    named = [(meta.return_hidden_states_index, meta.hidden_states_argument_name),
             (meta.return_encoder_hidden_states_index, meta.encoder_hidden_states_argument_name)]
    return tuple(name for index, name in sorted((i, n) for i, n in named if i is not None))


def expert_names(pipe: Any) -> list[str]:
    """The pipeline's denoiser components that are present, in hand-over order (Wan2.2 A14B has two)."""
    names = dict.fromkeys(c for f in FAMILIES for c in f.components)
    return [name for name in names if getattr(pipe, name, None) is not None]


def expert_segments(pipe: Any, timesteps: Any, experts: list[str]) -> dict[str, tuple[int, int]]:
    """Which consecutive steps ``[start, end)`` each expert denoises in a run over ``timesteps``.

    Wan2.2 hands over from ``transformer`` (high noise) to ``transformer_2`` at the first timestep below
    ``boundary_ratio * num_train_timesteps``, as its pipeline does. A single-expert pipeline runs every step.
    """
    n = len(timesteps)
    if len(experts) < 2:
        return {experts[0]: (0, n)} if experts else {}
    family = family_for(getattr(pipe, experts[0]))
    ratio = getattr(getattr(pipe, "config", None), family.handover, None) if family.handover else None
    if ratio is None:
        raise ValueError(
            f"{type(pipe).__name__} has {len(experts)} transformers but no {family.handover or 'hand-over rule'}: "
            "Spectrum cannot tell which steps each one denoises"
        )
    boundary = ratio * pipe.scheduler.config.num_train_timesteps
    switch = next((i for i, t in enumerate(timesteps.tolist()) if t < boundary), n)
    segments = {experts[0]: (0, switch), experts[1]: (switch, n)}
    return {name: seg for name, seg in segments.items() if seg[1] > seg[0]}


def expert_lengths(pipe: Any, num_steps: int) -> tuple[int, ...]:
    """How many of ``num_steps`` each expert will denoise, known before the call (for validating an NFE).

    Asks a scratch copy of the pipeline's scheduler for its timesteps, so the pipeline's own scheduler is
    untouched. Schedulers whose timesteps depend on the call (FLUX's resolution-dependent shift) only
    matter here for multi-expert pipelines, which have none.
    """
    experts = expert_names(pipe)
    if len(experts) < 2:
        return (num_steps,)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler.set_timesteps(num_steps)
    segments = expert_segments(pipe, scheduler.timesteps, experts)
    return tuple(end - start for start, end in sorted(segments.values()))
