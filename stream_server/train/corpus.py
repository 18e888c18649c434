"""The English sentences the autoregressive voice is distilled on, and the held-out ones it is judged on.

Training sentences come from templates whose ``{slots}`` are filled from word lists (corpus_words.py),
so the text is varied (game lines, assistant replies, smart-speaker answers, questions, numbers, names)
yet reproducible from a seed. Held-out sentences are hand-written (heldout.txt) and never generated.

Template syntax: ``{a|b|c}`` picks one option; ``{name}`` fills a slot; ``{a:adj object}`` fills the
slots in turn and puts "a" or "an" before them; ``{pl:object}`` plurals the last word. Braces nest:
the innermost are filled first, and a slot's value may itself be a template.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from importlib import resources

from . import corpus_words as W
from .corpus_words import TEMPLATES

Slot = Callable[[random.Random], str]

_MAX_WORDS = 38  # the longest templates give about 35 words; a longer sentence is dropped, not cut
_NUMBER_WORDS = "two three four five six seven eight nine ten eleven twelve twenty".split() + [
    "a few", "several", "a dozen"]
_COLORS = "red blue green yellow purple black white gray brown pink orange navy".split()
_GO_ACTIVITIES = ("hiking swimming fishing camping shopping skating skiing surfing sailing dancing "
                  "bowling jogging kayaking cycling rowing birdwatching stargazing snowboarding").split()
_PLAYLIST_MOODS = ["Morning", "Evening", "Sunday", "Rainy Day", "Road Trip", "Focus", "Workout",
                   "Dinner Party", "Late Night", "Summer"]
_PLURALS = {"knife": "knives", "loaf": "loaves", "wolf": "wolves", "thief": "thieves",
            "scarf": "scarves", "potato": "potatoes", "tomato": "tomatoes", "sheep": "sheep",
            "deer": "deer", "moose": "moose", "trout": "trout", "salmon": "salmon",
            "goose": "geese", "octopus": "octopuses", "staff": "staves", "mouse": "mice"}


def _pick(items: list[str]) -> Slot:
    return lambda r: r.choice(items)


def ordinal(n: int) -> str:
    """3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _article(phrase: str) -> str:
    """ "a" or "an" by the sound of the first word, not just its first letter."""
    word = phrase.split()[0].lower()
    if word[0].isdigit():  # "an 8", "an 11", "an 18,000"
        head = word.split(",")[0].split(".")[0].rstrip("%")
        vowel = head[0] == "8" or head in ("11", "18")
    elif word.startswith(("uni", "use", "usu", "eu", "one", "uk")):
        vowel = False
    else:
        vowel = word[0] in "aeiou" or word.startswith(("hour", "honest", "honor", "heir"))
    return f"{'an' if vowel else 'a'} {phrase}"


def _plural(phrase: str) -> str:
    """Plural of the last word: "fishing rod" -> "fishing rods", "fisherman" -> "fishermen"."""
    head, _, word = phrase.rpartition(" ")
    if word in _PLURALS:
        word = _PLURALS[word]
    elif word.endswith("man"):
        word = word[:-3] + "men"
    elif word.endswith(("s", "x", "z", "ch", "sh")):
        word += "es"
    elif word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        word = word[:-1] + "ies"
    else:
        word += "s"
    return f"{head} {word}" if head else word


# Numbers in the shapes people type them; the teacher voice reads them aloud, so the student learns to.
def _count(r: random.Random) -> str:
    k = r.random()
    if k < 0.4:
        return str(r.randint(2, 20))
    if k < 0.75:
        return str(r.randint(21, 199))
    return str(r.randint(200, 999)) if k < 0.92 else f"{r.randint(1000, 99999):,}"


def _cents(r: random.Random) -> str:
    return f"{r.randrange(0, 100, 5):02d}" if r.random() < 0.7 else f"{r.randint(0, 99):02d}"


def _price(r: random.Random) -> str:
    k = r.random()
    if k < 0.45:
        return f"${r.randint(1, 99)}.{_cents(r)}"
    if k < 0.7:
        return f"${r.randint(2, 500)}"
    if k < 0.8:
        return f"${r.randint(1000, 9999):,}"
    if k < 0.88:
        return f"{r.randint(5, 95)} cents"
    return f"£{r.randint(1, 80)}.{_cents(r)}" if k < 0.94 else f"€{r.randint(2, 300)}"


def _clock(r: random.Random) -> str:
    minute = r.choice([0, 5, 10, 15, 20, 30, 30, 45, 50, r.randint(0, 59)])
    return f"{r.randint(1, 12)}:{minute:02d}"


def _time(r: random.Random) -> str:
    k = r.random()
    if k < 0.55:
        return _clock(r)
    if k < 0.8:
        return f"{_clock(r)} {r.choice(['a.m.', 'p.m.'])}"
    if k < 0.9:
        return f"{r.randint(1, 12)} " + r.choice(["a.m.", "p.m.", "o'clock"])
    return r.choice(["noon", "midnight", "half past six", "a quarter to nine"])


def _year(r: random.Random) -> str:
    return str(r.randint(1950, 2030) if r.random() < 0.7 else r.randint(1500, 1949))


def _date(r: random.Random) -> str:
    month, day = r.choice(W.MONTHS), r.randint(1, 28)
    return r.choice([f"{month} {ordinal(day)}", f"{month} {day}", f"the {ordinal(day)} of {month}",
                     f"{month} {day}, {r.randint(2019, 2030)}", f"{r.choice(W.WEEKDAYS)}, {month} {ordinal(day)}"])


def _percent(r: random.Random) -> str:
    k = r.random()
    if k < 0.6:
        return f"{r.randint(1, 100)}%"
    return f"{r.randint(1, 99)}.{r.randint(1, 9)}%" if k < 0.8 else f"{r.randrange(10, 100, 5)} percent"


def _decimal(r: random.Random) -> str:
    return f"{r.randint(0, 99)}.{r.randint(1, 9)}" if r.random() < 0.7 else f"{r.randint(0, 9)}.{r.randint(10, 99)}"


def _phone(r: random.Random) -> str:
    k = r.random()
    if k < 0.4:
        return f"555-{r.randint(0, 9999):04d}"
    if k < 0.8:
        return f"{r.randint(200, 999)}-{r.randint(200, 999)}-{r.randint(0, 9999):04d}"
    return f"extension {r.randint(100, 9999)}"


def _duration(r: random.Random) -> str:
    return r.choice([f"{r.randint(2, 59)} minutes", f"{r.randint(5, 90)} seconds", "1 hour",
                     f"{r.randint(2, 9)} hours", f"{r.randint(1, 3)} hours and {r.randint(5, 55)} minutes",
                     "an hour and a half", "half an hour", f"{r.randint(2, 9)} and a half minutes"])


def _money_fantasy(r: random.Random) -> str:
    unit = r.choice(["gold coins", "gold", "silver pieces", "crowns", "gold pieces", "copper coins"])
    return f"{r.randint(2, 500)} {unit}"


# Weather words that fit a temperature (Fahrenheit), so it is never "101 degrees and frosty".
_WEATHER_BANDS = [(32, "snowy frosty icy cloudy clear windy overcast"),
                  (55, "chilly cloudy rainy drizzly foggy windy breezy overcast clear misty"),
                  (80, "sunny mild cloudy breezy clear rainy hazy"), (200, "sunny humid muggy hazy clear stormy")]


def _weather_for(degrees: int, r: random.Random) -> str:
    return r.choice(next(words for top, words in _WEATHER_BANDS if degrees < top).split())


def _weather_now(r: random.Random) -> str:
    degrees = r.randint(-5, 104)
    number = f"minus {-degrees}" if degrees < 0 else str(degrees)
    return f"{number} degrees and {_weather_for(degrees, r)}"


def _forecast(r: random.Random) -> str:
    high = r.randint(28, 98)
    return f"{_weather_for(high, r)} with a high of {high} degrees and a low of {high - r.randint(6, 24)}"


def _growth(r: random.Random) -> str:
    start = r.randint(800, 90000)
    return f"{start:,} to {start + r.randint(200, 90000):,}"


def _room(r: random.Random) -> str:
    floor = r.randint(1, 12)
    return f"Room {floor}{r.randint(1, 40):02d} is on the {ordinal(floor)} floor"


def _race(r: random.Random) -> str:
    """A finishing place and a field that is larger than it."""
    place = r.randint(1, 99)
    return f"{ordinal(place)} out of {r.randint(place + 20, 30000):,}"


def _tickets(r: random.Random) -> str:
    adult = r.randint(6, 60)
    child = r.choice([f"${adult // 2}", f"${adult // 2}.50", "$5", "nothing"])
    return f"${adult} for adults and {child}"


def _town(r: random.Random) -> str:
    return r.choice(W.TOWN_HEADS) + r.choice(W.TOWN_TAILS)


SLOTS: dict[str, Slot] = {
    "name": _pick(W.FIRST_NAMES), "surname": _pick(W.SURNAMES), "city": _pick(W.CITIES),
    "country": _pick(W.COUNTRIES), "lang": _pick(W.LANGUAGES), "town": _town,
    "full": lambda r: f"{r.choice(W.FIRST_NAMES)} {r.choice(W.SURNAMES)}",
    "titled": lambda r: f"{r.choice(W.TITLES)} {r.choice(W.SURNAMES)}",
    "landmark": lambda r: f"the {r.choice(W.LANDMARK_ADJS)} {r.choice(W.LANDMARK_NOUNS)}",
    "station": lambda r: r.choice([f"{r.choice(W.STARS)} Station", f"Outpost {r.randint(2, 99)}",
                                   f"the {r.choice(W.MOONS)} colony"]),
    "ship": lambda r: f"the {r.choice(W.SHIP_ADJS)} {r.choice(W.SHIP_NOUNS)}",
    "street": lambda r: f"{r.choice(W.TREES + W.SURNAMES)} {r.choice(W.STREET_KINDS)}",
    "star": _pick(W.STARS), "moon": _pick(W.MOONS),
    "object": _pick(W.OBJECTS), "fitem": _pick(W.FANTASY_ITEMS), "weapon": _pick(W.WEAPONS),
    "monster": _pick(W.MONSTERS), "trophy": _pick(W.TROPHIES), "scipart": _pick(W.SCI_PARTS),
    "scithing": _pick(W.SCI_THINGS), "food": _pick(W.FOOD_COUNT), "foodm": _pick(W.FOOD_MASS),
    "drink": _pick(W.DRINKS), "animal": _pick(W.ANIMALS), "job": _pick(W.JOBS),
    "cupdrink": _pick(["coffee", "tea", "hot chocolate", "espresso", "mint tea", "chai", "cocoa"]),
    "venue": _pick(W.VENUES), "fvenue": _pick(W.FANTASY_VENUES), "nature": _pick(W.NATURE),
    "room": _pick(W.ROOMS), "spot": _pick(W.SPOTS), "adj": _pick(W.ADJS), "mood": _pick(W.MOODS),
    "adv": _pick(W.ADVERBS), "nice": _pick(W.NICE), "abstract": _pick(W.ABSTRACTS),
    "activity": _pick(W.ACTIVITIES), "goact": _pick(_GO_ACTIVITIES), "subject": _pick(W.SUBJECTS),
    "genre": _pick(W.GENRES), "instrument": _pick(W.INSTRUMENTS), "sport": _pick(W.SPORTS),
    "clothes": _pick(W.CLOTHES), "color": _pick(_COLORS), "vehicle": _pick(W.VEHICLES),
    "relative": _pick(W.RELATIVES), "weekday": _pick(W.WEEKDAYS), "month": _pick(W.MONTHS),
    "season": _pick(W.SEASONS), "holiday": _pick(W.HOLIDAYS), "weather": _pick(W.WEATHER),
    "wevent": _pick(W.WEATHER_EVENTS), "task": _pick(W.TASKS), "skill": _pick(W.SKILLS),
    "short": _pick(W.SHORT_LINES), "event": _pick(W.EVENTS), "ipast": _pick(W.INTRANSITIVE),
    "ovp": lambda r: r.choice(W.OBJECT_VERBS)[1],
    "n": lambda r: str(r.randint(2, 12)), "num": _count, "numw": _pick(_NUMBER_WORDS),
    "price": _price, "clock": _clock,
    "time": _time, "year": _year, "date": _date, "pct": _percent, "dec": _decimal, "phone": _phone,
    "ord": lambda r: ordinal(r.choice([r.randint(1, 12), r.randint(13, 99)])),
    "dur": _duration, "gold": _money_fantasy, "now": _weather_now, "forecast": _forecast,
    "pet": _pick(W.PETS), "shop": _pick(W.SHOPS), "race": _race, "tickets": _tickets,
    "byear": lambda r: str(r.randint(1925, 2018)), "ryear": lambda r: str(r.randint(1950, 2024)),
    "yourtask": lambda r: re.sub(r"\bmy\b", "your", r.choice(W.TASKS)),
    "ourtask": lambda r: re.sub(r"\bmy\b", "our", r.choice(W.TASKS)), "day": lambda r: str(r.randint(1, 28)),
    "coldtemp": lambda r: r.choice([f"{r.randint(12, 38)} degrees", f"minus {r.randint(2, 25)} degrees"]),
    "growth": _growth, "roomfloor": _room, "credits": lambda r: f"{r.randint(50, 20000):,} credits",
    "score": lambda r: f"{r.randint(1, 9)} to {r.randint(0, 6)}", "flight": lambda r: str(r.randint(10, 2999)),
    "thermo": lambda r: str(r.randint(60, 78)), "quarter": lambda r: ordinal(r.randint(1, 4)),
    "ago": _pick(["three days ago", "two nights ago", "last week", "at dawn", "before the storm",
                  "this morning", "a fortnight ago", "on the night of the festival"]),
    "playlist": lambda r: f"{r.choice(_PLAYLIST_MOODS)} {r.choice(['Mix', 'Vibes', 'Favorites', 'Classics', 'Hits'])}",
    "plan": _pick(["{event}", "lunch with {name}", "dinner at {name}'s place", "a call with {titled}",
                   "coffee with {full}", "{sport} practice"]),
}
_BRACE = re.compile(r"\{([^{}]*)\}")  # innermost braces only: nothing filled can still hold a brace


def _expand(template: str, r: random.Random) -> str:
    """Fill the innermost braces until none are left."""
    def fill(match: re.Match[str]) -> str:
        body = match.group(1)
        if "|" in body:
            return r.choice(body.split("|"))
        mode, _, names = body.rpartition(":")
        text = " ".join(SLOTS[name](r) for name in names.split())
        return _article(text) if mode == "a" else _plural(text) if mode == "pl" else text

    while "{" in template:
        template = _BRACE.sub(fill, template)
    return template


def _tidy(text: str) -> str:
    """Single spaces, no space before punctuation, a capital first letter."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = text.replace("..", ".")  # "7 p.m." at the end of a sentence
    return text[:1].upper() + text[1:]


def sentence_key(text: str) -> str:
    """What two sentences must differ in to count as different: letters and digits, case-folded."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def heldout_sentences() -> list[str]:
    """The hand-written evaluation sentences (heldout.txt), in file order."""
    text = resources.files(__package__).joinpath("heldout.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def training_sentences(n: int = 6000, seed: int = 0) -> list[str]:
    """``n`` distinct generated sentences, the same for the same seed in any process, none of them
    a held-out sentence (a collision is dropped and another one generated)."""
    r = random.Random(seed)
    seen = {sentence_key(s) for s in heldout_sentences()}
    out: list[str] = []
    for _ in range(max(n, 1) * 50):  # duplicates are skipped; the bound only guards a bad template set
        if len(out) == n:
            return out
        text = _tidy(_expand(r.choice(TEMPLATES), r))
        key = sentence_key(text)
        if key not in seen and len(text.split()) <= _MAX_WORDS:
            seen.add(key)
            out.append(text)
    if len(out) < n:
        raise ValueError(f"the templates gave only {len(out)} distinct sentences, {n} were asked for")
    return out
