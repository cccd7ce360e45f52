"""The languages each encoder was trained on, as ISO 639-1 codes (``registry.encoder_languages`` reads them)."""
from __future__ import annotations

# The languages each encoder was trained on (ISO 639-1 codes); None = any language (no pretrained weights).
USE_LANGUAGES = frozenset("ar de en es fr it ja ko nl pl pt ru th tr zh".split())  # USE multilingual v3: 16
# (Chinese simplified and traditional are both "zh")
XLMR_LANGUAGES = frozenset(  # multilingual-e5-small (XLM-RoBERTa's ~100 pretraining languages)
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr hu hy id is "
    "it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt ro ru sa sd si sk sl "
    "so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh".split())
ST_LANGUAGES = {"all-minilm-l6-v2": frozenset({"en"}), "sentence-transformers/all-minilm-l6-v2": frozenset({"en"}),
                "intfloat/multilingual-e5-small": XLMR_LANGUAGES, "intfloat/multilingual-e5-base": XLMR_LANGUAGES,
                "intfloat/multilingual-e5-large": XLMR_LANGUAGES,
                "sentence-transformers/paraphrase-multilingual-minilm-l12-v2": frozenset(
                    "ar bg ca cs da de el en es et fa fi fr gl gu he hi hr hu hy id it ja ka ko ku lt lv mk mn mr "
                    "ms my nb nl pl pt ro ru sk sl sq sr sv th tr uk ur vi zh".split())}
# what the warning suggests for a language the project's encoder does not cover
WIDE_COVERAGE_ENCODER = "e5"
