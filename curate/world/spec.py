"""The synthetic world's vocabulary: every attribute a scene can have, and how captions name it.

This module is the contract between the world generator, the embedded models, the judges and the
audits: they all import the names and orders below instead of repeating them. Truth tables store
the English names (``red``, ``dog``, ``east_asian``), never indices.
"""

from __future__ import annotations

IMAGE_SIZE = 64  # rendered scenes are IMAGE_SIZE x IMAGE_SIZE RGB

# Saturated, hue-separated palette: a pixel rule can tell them apart (the `world` judge relies on it).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 135, 0),
    "yellow": (240, 215, 0),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "purple": (140, 40, 190),
}

# Pale backgrounds, so the object's color always stands out by saturation.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "sky": (200, 225, 250),
    "grass": (205, 235, 190),
    "beach": (245, 232, 200),
    "room": (226, 224, 222),
}

# Kinds and the number of legs a correct rendering has (0 = not a limbed subject).
KINDS: dict[str, int] = {
    "ball": 0,
    "cup": 0,
    "car": 0,
    "house": 0,
    "dog": 4,
    "bird": 2,
    "spider": 8,
    "person": 2,
}
LIMBED_KINDS: tuple[str, ...] = tuple(k for k, n in KINDS.items() if n > 0)
LEG_COLOR = (32, 32, 32)  # legs are dark strokes, so they can be counted as connected components

# Culture-marked variants (roof style for houses, headwear for persons), skewed in the data.
CULTURES: tuple[str, ...] = ("western", "east_asian", "south_asian")
CULTURE_KINDS: tuple[str, ...] = ("house", "person")
CULTURE_PRIOR: dict[str, dict[str, float]] = {
    # P(culture | caption language). The skew is a property of the data, learned by the models.
    "default": {"western": 0.72, "east_asian": 0.18, "south_asian": 0.10},
    "zh": {"western": 0.30, "east_asian": 0.62, "south_asian": 0.08},
    "ja": {"western": 0.32, "east_asian": 0.60, "south_asian": 0.08},
}

# Caption languages and their share of rows: English dominates, as in LAION-5B.
LANGUAGE_MIX: dict[str, float] = {
    "en": 0.64,
    "de": 0.07,
    "fr": 0.06,
    "es": 0.07,
    "ru": 0.06,
    "zh": 0.06,
    "ja": 0.04,
}

COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("red", "orange", "yellow", "green", "blue", "purple"),
    "de": ("rot", "orange", "gelb", "grün", "blau", "lila"),
    "fr": ("rouge", "orange", "jaune", "vert", "bleu", "violet"),
    "es": ("rojo", "naranja", "amarillo", "verde", "azul", "morado"),
    "ru": ("красный", "оранжевый", "жёлтый", "зелёный", "синий", "фиолетовый"),
    "zh": ("红色", "橙色", "黄色", "绿色", "蓝色", "紫色"),
    "ja": ("赤い", "オレンジ色の", "黄色い", "緑の", "青い", "紫の"),
}

KIND_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("ball", "cup", "car", "house", "dog", "bird", "spider", "person"),
    "de": ("Ball", "Tasse", "Auto", "Haus", "Hund", "Vogel", "Spinne", "Person"),
    "fr": ("ballon", "tasse", "voiture", "maison", "chien", "oiseau", "araignée", "personne"),
    "es": ("pelota", "taza", "coche", "casa", "perro", "pájaro", "araña", "persona"),
    "ru": ("мяч", "чашка", "машина", "дом", "собака", "птица", "паук", "человек"),
    "zh": ("球", "杯子", "汽车", "房子", "狗", "鸟", "蜘蛛", "人"),
    "ja": ("ボール", "カップ", "車", "家", "犬", "鳥", "クモ", "人"),
}

BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("against the sky", "on grass", "on the beach", "in a room"),
    "de": ("vor dem Himmel", "auf Gras", "am Strand", "in einem Zimmer"),
    "fr": ("devant le ciel", "sur l'herbe", "sur la plage", "dans une pièce"),
    "es": ("frente al cielo", "sobre la hierba", "en la playa", "en una habitación"),
    "ru": ("на фоне неба", "на траве", "на пляже", "в комнате"),
    "zh": ("在天空下", "在草地上", "在海滩上", "在房间里"),
    "ja": ("空の下の", "草の上の", "浜辺の", "部屋の中の"),
}

CULTURE_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("western", "east asian", "south asian"),
    "de": ("westlich", "ostasiatisch", "südasiatisch"),
    "fr": ("occidental", "est-asiatique", "sud-asiatique"),
    "es": ("occidental", "asiático oriental", "sudasiático"),
    "ru": ("западный", "восточноазиатский", "южноазиатский"),
    "zh": ("西式", "东亚风格", "南亚风格"),
    "ja": ("西洋風の", "東アジア風の", "南アジア風の"),
}

# Alt-text words for an image's most visible flaw (order of sample.DEGRADATIONS), appended to some
# captions as LAION's alt-texts sometimes do: what lets a CLIP trained on captions see quality.
QUALITY_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("blurry", "grainy", "washed out", "pixelated", "small"),
    "de": ("unscharf", "körnig", "verwaschen", "verpixelt", "klein"),
    "fr": ("flou", "granuleux", "délavé", "pixelisé", "petit"),
    "es": ("borroso", "granulado", "desvaído", "pixelado", "pequeño"),
    "ru": ("размытое", "зернистое", "блёклое", "пиксельное", "маленькое"),
    "zh": ("模糊", "噪点多", "褪色", "像素化", "很小"),
    "ja": ("ぼやけた", "ノイズの多い", "色あせた", "ピクセル化した", "小さい"),
}

# Caption templates per language. {c}=color word, {k}=kind word, {b}=background phrase,
# {u}=culture word plus a trailing space (or "" when the caption does not mention culture).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "a {c} {u}{k} {b}",
        "photo of a {c} {u}{k} {b}",
        "{c} {u}{k}",
        "a {c} {u}{k} {b}, high quality photo",
        "cute {c} {u}{k} {b} - stock image",
    ),
    "de": ("ein {c} {u}{k} {b}", "Foto: {c} {u}{k} {b}", "{c} {u}{k}"),
    "fr": ("un {k} {u}{c} {b}", "photo d'un {k} {u}{c} {b}", "{k} {c}"),
    "es": ("un {k} {u}{c} {b}", "foto de un {k} {u}{c} {b}", "{k} {c}"),
    "ru": ("{c} {u}{k} {b}", "фото: {c} {u}{k} {b}", "{c} {k}"),
    "zh": ("{b}的{c}{u}{k}", "{c}{u}{k}的照片", "{c}{k}"),
    "ja": ("{b}{c}{u}{k}", "{c}{u}{k}の写真", "{c}{k}"),
}


def check() -> None:
    """Internal consistency: every language names every color, kind, background and culture."""
    for lang in LANGUAGE_MIX:
        assert len(COLOR_WORDS[lang]) == len(COLORS), lang
        assert len(KIND_WORDS[lang]) == len(KINDS), lang
        assert len(BACKGROUND_WORDS[lang]) == len(BACKGROUNDS), lang
        assert len(CULTURE_WORDS[lang]) == len(CULTURES), lang
        assert len(QUALITY_WORDS[lang]) == len(QUALITY_WORDS["en"]), lang
        assert TEMPLATES[lang], lang
    assert abs(sum(LANGUAGE_MIX.values()) - 1.0) < 1e-9
