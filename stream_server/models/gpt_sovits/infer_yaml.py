"""GPT-SoVITS's own `tts_infer.yaml` (its `custom:` section) as one of our voice sections, so a
GPT-SoVITS user can point this server at the file they already have."""

from __future__ import annotations

from pathlib import Path

import yaml

from ...config import GptSovitsVoiceSection
from .sovits_checkpoint import PRO_VERSIONS, SERVED_VERSIONS
from .sv_model import UPSTREAM_SV_PATH


def _resolve(value: str, config_file: Path) -> str:
    """Upstream paths are relative to the GPT-SoVITS checkout (its working directory): try as
    given, then beside the file and the directories above it (the file lives in GPT_SoVITS/configs)."""
    p = Path(value)
    if p.is_absolute() or p.exists():
        return str(p)
    for base in (config_file.parent, *config_file.parent.parents[:2]):
        if (base / p).exists():
            return str(base / p)
    return str(p)  # missing: loading the voice says so, with its name


def voice_from_infer_yaml(path: str | Path, ref_audio: str | None = None, prompt_text: str = "",
                          prompt_lang: str = "en", text_lang: str = "en") -> tuple[GptSovitsVoiceSection, str]:
    """(the voice section, the device the file asks for)."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read GPT-SoVITS config {str(file)!r}: {exc}") from None
    custom = data.get("custom") if isinstance(data, dict) else None
    if not isinstance(custom, dict):
        raise ValueError(f"{str(file)!r} has no `custom:` section (GPT-SoVITS's tts_infer.yaml has one)")
    version = str(custom.get("version", "v2"))
    if version not in SERVED_VERSIONS:
        raise ValueError(f"{str(file)!r} is for GPT-SoVITS {version[:32]}; this server serves GPT-SoVITS v2, v2Pro "
                         "and v2ProPlus voices: point it at a tts_infer.yaml whose custom.version is one of those")
    for key in ("t2s_weights_path", "vits_weights_path"):
        if not custom.get(key):
            raise ValueError(f"{str(file)!r}: custom.{key} is missing")
    optional = {k: _resolve(custom[k], file) for k in ("bert_base_path", "cnhuhbert_base_path") if custom.get(k)}
    section = GptSovitsVoiceSection(
        kind="gpt_sovits",
        t2s_weights=_resolve(custom["t2s_weights_path"], file),
        sovits_weights=_resolve(custom["vits_weights_path"], file),
        bert_dir=optional.get("bert_base_path"),
        hubert_dir=optional.get("cnhuhbert_base_path"),
        # upstream's sv.py loads the SV model from a fixed path in the checkout (no config key)
        sv_weights=_resolve(UPSTREAM_SV_PATH, file) if version in PRO_VERSIONS else None,
        ref_audio=ref_audio, prompt_text=prompt_text, prompt_lang=prompt_lang, text_lang=text_lang,
    )
    return section, str(custom.get("device", "cpu"))
