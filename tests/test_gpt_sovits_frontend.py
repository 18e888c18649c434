"""GPT-SoVITS v2 text frontend: symbol table, English and Chinese G2P, BERT features, splitting.

Expected phones are checked by hand: English against the CMU dictionary, Chinese against
standard Mandarin readings and sandhi rules. Nothing here touches the network; the BERT model
is a tiny random one built in a temporary directory.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_server.models.gpt_sovits.frontend import (
    SUPPORTED_LANGUAGES,
    SYMBOLS,
    VOCAB_SIZE,
    BertModelMissing,
    EmptyTextError,
    TextFrontend,
    UnknownPhoneError,
    UnsupportedLanguageError,
    bert_features,
    chinese,
    cut,
    english,
    language_runs,
    oov,
    split,
    to_ids,
    zh_normalize,
)
from stream_server.models.gpt_sovits.frontend.en_normalize import normalize as en_normalize

# -- symbols ----------------------------------------------------------------------------------

def test_symbol_table_is_upstream_v2():
    assert VOCAB_SIZE == len(SYMBOLS) == 732
    assert len(set(SYMBOLS)) == 732
    # sha256 of "\n".join(symbols) of upstream text/symbols2.py @48b1a01 (computed from its list)
    digest = hashlib.sha256("\n".join(SYMBOLS).encode()).hexdigest()
    assert digest == "0771f6cd6f6201e8c2b0de921dc69cc04caf3f346c599d4a41413967d5674da7"
    ids = {"!": 0, ",": 1, "-": 2, ".": 3, "?": 4, "AA": 5, "AH0": 12, "HH": 51, "SP": 77, "UNK": 86,
           "_": 95, "a1": 97, "ang4": 115, "i05": 165, "ir4": 214, "En1": 44, "y": 318, "zh": 320,
           "…": 321, "[": 322, "]": 323, "Ya": 353, "Yz": 731}
    assert {s: SYMBOLS.index(s) for s in ids} == ids
    assert to_ids(["_", "HH", "a1", "."]) == [95, 51, 97, 3]


def test_unknown_phone_is_a_clear_error():
    with pytest.raises(UnknownPhoneError, match="'XX'.*position 1"):
        to_ids(["a1", "XX"])


# -- shared loaded frontends --------------------------------------------------------------------

@pytest.fixture(scope="module")
def en() -> english.EnglishG2P:
    return english.load_english()


@pytest.fixture(scope="module")
def zh() -> chinese.ChineseG2P:
    return chinese.load_chinese()


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A random 3-layer BERT with hidden size 1024 and a vocabulary of a few characters."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    d = tmp_path_factory.mktemp("tiny_bert")
    chars = "你好世界我们是一不的了天，。！？,.!?…-"
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                 encoding="utf-8")
    BertTokenizer(str(d / "vocab.txt")).save_pretrained(str(d))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=5 + len(chars), hidden_size=1024, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=128)
    BertForMaskedLM(cfg).eval().save_pretrained(str(d))
    return d


@pytest.fixture(scope="module")
def frontend(tiny_bert_dir) -> TextFrontend:
    return TextFrontend(tiny_bert_dir)


# -- English ----------------------------------------------------------------------------------

def test_english_known_words_are_cmu_first_pronunciations(en):
    phones, norm = english.g2p("Hello world!", en)
    # CMUdict: HELLO  HH AH0 L OW1 ; WORLD  W ER1 L D ; no phone at the word boundary
    assert phones == ["HH", "AH0", "L", "OW1", "W", "ER1", "L", "D", "!"]
    assert to_ids(phones) == [51, 12, 62, 68, 91, 39, 62, 26, 0]
    assert norm == "Hello world!"


@pytest.mark.parametrize("text, expected", [
    ("I have $250.", "I have two hundred fifty dollars."),
    ("It was $6.24, or £1.", "It was six dollars and twenty-four cents, or one pound."),
    ("the 1st and 22nd", "the first and twenty-second"),
    ("in 1984 and 2005", "in nineteen eighty-four and two thousand five"),
    ("12,000 people", "twelve thousand people"),
    ("3/4 of 50%", "three fourths of fifty percent"),
    ("3.14 is pi", "three point one four is pi"),
    ("at 13:30", "at one thirty p.m."),
    ("e.g. OpenAI", "for example Open A I"),
    ("Wait... what?!", "Wait. what?"),
])
def test_english_normalisation(text, expected):
    assert en_normalize(text) == expected


def test_english_punctuation_apostrophe_and_short_text(en):
    phones, _ = english.g2p("Yes, it's fine.", en)
    # YES  Y EH1 S ; IT'S  IH1 T S ; FINE  F AY1 N
    assert phones == ["Y", "EH1", "S", ",", "IH1", "T", "S", "F", "AY1", "N", "."]
    assert english.g2p("A", en)[0] == [",", "EY1"]  # a capital A alone is the letter; < 4 phones get a ","


def test_english_letters_possessive_and_compounds(en):
    assert english.g2p("NASA's GPU", en)[0][-6:] == ["JH", "IY1", "P", "IY1", "Y", "UW1"]  # G-P-U
    # a compound not in the dictionary is split by wordsegment and its parts looked up
    assert "catdoghouse" not in en.cmu
    assert en.lookup("catdoghouse") == en.lookup("cat") + en.lookup("doghouse")


def test_english_oov_uses_g2p_en_weights(en):
    model = oov.load_oov_model()
    assert "blorptastic" not in en.cmu
    # the same phones g2p_en.G2p.predict gives (compared during development)
    assert model.predict("blorptastic") == ["B", "L", "AO2", "R", "P", "T", "AE1", "S", "T", "IH0", "K"]
    # as upstream, an unknown word is first split by wordsegment; parts that are still unknown
    # (and longer than 3 letters) go to the neural model
    assert en.segmenter.segment("frobnicate") == ["frob", "nicate"]
    assert "frob" not in en.cmu and "nicate" not in en.cmu
    phones, _ = english.g2p("frobnicate", en)
    assert phones == model.predict("frob") + model.predict("nicate")
    assert phones == ["F", "R", "AA1", "B", "N", "AY1", "K", "EY2", "T"]


def test_english_homograph_reading_follows_context(en):
    assert english.g2p("I read it", en)[0][1:4] == ["R", "IY1", "D"]
    assert english.g2p("she read it", en)[0][2:5] == ["R", "EH1", "D"]


# -- Chinese ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("我有2个苹果", "我有两个苹果"),
    ("2024年3月15日", "二零二四年三月十五日"),
    ("拨打110", "拨打幺幺零"),
    ("涨了15%", "涨了百分之十五"),
    ("气温-3°C", "气温零下三度"),
    ("共3.5公斤", "共三点五公斤"),
    ("你好：世界；再见……", "你好,世界,再见…"),
])
def test_chinese_normalisation(text, expected):
    assert zh_normalize.normalize(text) == expected


def _syllables(phones: list[str]) -> str:
    return " ".join(phones)


@pytest.mark.parametrize("text, expected", [
    ("你好，我是小明。", "n i2 h ao3 , w o3 sh ir4 x iao3 m ing2 ."),  # 你好: 3-3 -> 2-3
    ("不怕", "b u2 p a4"),  # 不 before a 4th tone -> bu2
    ("看不懂", "k an4 b u5 d ong3"),  # A不B: neutral 不
    ("一天", "y i4 t ian1"),  # 一 before tone 1 -> yi4
    ("一段", "y i2 d uan4"),  # 一 before tone 4 -> yi2
    ("第一", "d i4 y i1"),  # ordinal keeps yi1
    ("看一看", "k an4 y i5 k an4"),  # A一A: neutral
    ("展览馆", "zh an2 l an2 g uan3"),  # 2+1 all third: 2 2 3
    ("纸老虎", "zh ir3 l ao2 h u3"),  # 1+2 all third: 3 2 3
    ("我们的桌子", "w o3 m en5 d e5 zh uo1 z i05"),  # neutral 们, 的, 子; zi -> i0
    ("小孩儿", "x iao3 h ai2 EE er2"),  # r-coloured 儿 takes the previous tone
    ("女儿", "n v3 EE er2"),
    ("学校", "x ve2 x iao4"),  # ü finals written v; zero initial er -> EE
])
def test_chinese_phones_with_tone_sandhi(zh, text, expected):
    phones, word2ph, norm = chinese.g2p(text, zh)
    assert _syllables(phones) == expected
    assert sum(word2ph) == len(phones) and len(word2ph) == len(norm)


def test_chinese_word2ph(zh):
    phones, word2ph, norm = chinese.g2p("你好，世界！", zh)
    assert norm == "你好,世界!"
    assert word2ph == [2, 2, 1, 2, 2, 1]
    assert to_ids(phones)[:2] == [227, 167]  # n, i2


def test_zero_initial_syllables(zh):
    assert _syllables(chinese.g2p("爱鹅欧", zh)[0]) == "AA ai4 EE e2 OO ou1"
    assert _syllables(chinese.g2p("烟叶", zh)[0]) == "y En1 y E4"
    assert _syllables(chinese.g2p("外文", zh)[0]) == "w ai4 w en2"


def test_chinese_pause_mark(zh):
    # upstream: with a ￥ in the text, it and every comma become the silence symbol SP2
    phones, word2ph, norm = chinese.g2p("你好￥世界，再见", zh)
    assert norm == "你好,世界,再见"
    assert phones.count("SP2") == 2 and "," not in phones
    assert sum(word2ph) == len(phones)


# -- BERT features ----------------------------------------------------------------------------

def test_bert_features_repeat_rows_per_phone(zh, tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    phones, word2ph, norm = chinese.g2p("你好，世界。", zh)
    feats = bert_features(norm, word2ph, tiny_bert_dir)
    assert feats.shape == (1024, len(phones)) == (1024, 10)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_bert_dir)).eval()
    with torch.no_grad():
        hidden = model(**tok(norm, return_tensors="pt"), output_hidden_states=True).hidden_states
    per_char = hidden[1][0, 1:-1]  # 3 layers: index 1 is hidden_states[-3]
    col = 0
    for i, n in enumerate(word2ph):
        for _ in range(n):
            torch.testing.assert_close(feats[:, col], per_char[i])
            col += 1


def test_bert_refuses_text_longer_than_its_positions(tiny_bert_dir):
    with pytest.raises(ValueError, match="at most 510"):
        bert_features("你" * 511, [2] * 511, tiny_bert_dir)


def test_missing_bert_dir_names_the_config_key(tmp_path):
    with pytest.raises(BertModelMissing, match="bert_base_path"):
        bert_features("你好", [2, 2], tmp_path / "nope")
    with pytest.raises(BertModelMissing, match="bert_base_path"):
        TextFrontend(None).phones("你好世界", "zh")


def test_phones_without_bert_are_the_same_phones_and_text_with_no_bert_call(frontend):
    """bert=False (what split_bucket's ordering needs): no BERT model needed, even for Chinese."""
    fe = TextFrontend(None)  # no bert_dir: a BERT call would raise BertModelMissing
    for text, lang in [("我喜欢apple。", "auto"), ("好", "zh"), ("你好，今天天气很好。", "all_zh")]:
        out, full = fe.phones(text, lang, bert=False), frontend.phones(text, lang)
        assert (out.phones, out.phone_ids, out.norm_text) == (full.phones, full.phone_ids, full.norm_text)
        assert not out.bert.any() and out.bert.shape == full.bert.shape and full.bert.any()


def test_frontend_mixed_text(frontend):
    out = frontend.phones("我喜欢apple。", "auto")
    assert out.norm_text == "我喜欢apple."
    # 我喜欢: 喜欢 has a neutral 欢, and 我 before the third-tone 喜 becomes wo2
    assert list(out.phones) == "w o2 x i3 h uan5 AE1 P AH0 L .".split()
    assert out.phone_ids == to_ids(out.phones)
    assert out.bert.shape == (1024, 11)
    assert out.bert[:, 6:].abs().sum() == 0  # English: zero features
    assert out.bert[:, :6].abs().sum() > 0


def test_frontend_short_text_gets_a_leading_pause(frontend):
    out = frontend.phones("好", "zh")  # 2 phones < 6: done again as ".好"
    assert list(out.phones) == [".", "h", "ao3"] and out.norm_text == ".好"
    assert out.bert.shape == (1024, 3)


def test_language_runs():
    assert language_runs("我喜欢apple和banana", "zh") == [
        ("zh", "我喜欢"), ("en", "apple"), ("zh", "和"), ("en", "banana")]
    assert language_runs("Hello world, 你好世界！", "auto") == [("en", "Hello world, "), ("zh", "你好世界！")]
    assert language_runs("有3个", "auto") == [("zh", "有3个")]
    assert language_runs("I have 3 cats", "auto") == [("en", "I have 3 cats")]
    assert language_runs("anything 你好", "en") == [("en", "anything 你好")]


@pytest.mark.parametrize("lang", ["fr", "JA", "all_en", ""])
def test_unknown_language(frontend, lang):
    with pytest.raises(UnsupportedLanguageError, match="supported: auto, auto_yue, en, zh, ja, yue, ko, all_zh"):
        frontend.phones("hello", lang)


# -- splitting ----------------------------------------------------------------------------------

def test_cut_methods():
    text = "你好，世界！今天3.5度、很热；OK? 好…"
    assert cut(text, "cut0") == text
    assert cut(".., ", "cut0") == "\n"  # only (ASCII) punctuation and spaces
    nine = "一，二，三，四，五，六，七，八，九。"
    assert cut(nine, "cut1") == "一，二，三，四，\n五，六，七，八，九。"  # the last piece takes the rest
    s = "这是一个二十个字左右的句子用来测试切分，"  # 20 characters
    assert cut(s * 6, "cut2") == s * 3 + "\n" + s * 3  # cut once over 50 characters
    assert cut(s * 4, "cut2") == s * 4  # a short last piece joins the previous one
    assert cut("你好。世界。。再见", "cut3") == "你好\n世界\n再见"
    assert cut("Hello. It costs 3.5 dollars. Bye.", "cut4") == "Hello\n It costs 3.5 dollars\n Bye"
    # cut5: a decimal point is no cut, and the full-width ； is not one of its marks
    assert cut(text, "cut5") == "你好，\n世界！\n今天3.5度、\n很热；OK?\n 好…"
    with pytest.raises(ValueError, match="cut6"):
        cut(text, "cut6")


def test_split_pieces():
    assert split("你好，世界", "cut5", "zh") == ["你好，世界。"]  # merged (< 5 chars), 。 added
    assert split("Hi. How are you today? Fine", "cut5", "en") == ["Hi. How are you today?", " Fine."]
    # cut3 drops the 。 it cuts at; the short first piece is then merged into the next
    assert split("第一句。第二句很长很长。", "cut3", "zh") == ["第一句第二句很长很长。"]
    assert split("《》", "cut5", "zh") == []  # only symbols: nothing to say
    with pytest.raises(EmptyTextError):
        split("，。", "cut5", "zh")  # every piece dropped (upstream: "请输入有效文本")


# -- property: never a crash ------------------------------------------------------------------

_ALPHABET = list("abcXYZ 019.,!?'-$%:/你好一不是的了儿个天，。！？…—：；“”《》アかなー한국어김치嘅咗喺😀\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(_ALPHABET), max_size=24), lang=st.sampled_from(SUPPORTED_LANGUAGES))
def test_any_text_gives_ids_in_the_table_or_a_clear_error(frontend, text, lang):
    try:
        for piece in frontend.split(text, "cut5", lang):
            out = frontend.phones(piece, lang)
            assert all(0 <= i < VOCAB_SIZE for i in out.phone_ids)
            assert out.bert.shape == (1024, len(out.phone_ids))
    except (UnsupportedLanguageError, EmptyTextError):
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=16), lang=st.sampled_from(SUPPORTED_LANGUAGES))
def test_any_code_point_in_any_language_gives_ids_in_the_table_or_a_clear_error(frontend, text, lang):
    """Every api_v2 language value, whatever the text (surrogates, controls, any script): ids in
    the table, one BERT column each, or the frontend's own clear error."""
    try:
        for piece in frontend.split(text, "cut5", lang):
            out = frontend.phones(piece, lang)
            assert all(0 <= i < VOCAB_SIZE for i in out.phone_ids)
            assert out.bert.shape == (1024, len(out.phone_ids))
    except (UnsupportedLanguageError, EmptyTextError):
        pass
