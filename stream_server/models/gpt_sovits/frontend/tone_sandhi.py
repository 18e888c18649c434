"""Mandarin tone sandhi on pypinyin finals, following the rules of upstream ``tone_sandhi.py``
(PaddleSpeech's ToneSandhi), written anew.

Finals are strings such as ``"ao3"``; tone 5 is neutral. Per jieba word, in this order:
不 (bu2 before a 4th tone, neutral inside A不B), 一 (yi2 before a 4th tone, yi4 before others,
neutral in A一A, yi1 in 第一 and in numbers), neutral tone (reduplications, particles, 们/子
suffixes, directional complements, 个 as classifier, a list of words read with a neutral
syllable), then third-tone sandhi (3-3 -> 2-3 within 2-, 3- and 4-syllable words). Before that,
words are merged (不/一 with the next word, A一A, reduplications, adjacent all-third-tone
words, 儿) so that the rules see the units they need.

Word lists: the not-neutral list and the rules are upstream's. Upstream's neutral-tone list
(about 420 hand-picked words) is not copied here: it is loaded from the misaki package where
that is installed (misaki ships PaddleSpeech's list; the few words where it differs from
upstream's are corrected). Without misaki, ``NEUTRAL_WORDS`` holds about 200 of them, and the
other words keep the tone pypinyin gives (幸福, 介绍, 父亲, 队伍, 困难: upstream makes the last
syllable neutral).
"""

from __future__ import annotations

from collections.abc import Callable

from pypinyin import Style, lazy_pinyin

# Words whose last syllable is neutral (their last two characters also count inside longer
# words): the part of our own list that upstream's (PaddleSpeech's) list also holds. Upstream's
# whole list is used where the misaki package, which ships the same list, is installed.
NEUTRAL_WORDS = frozenset("""
姥爷 先生 丈夫 媳妇 女婿 姑娘 少爷 老爷 亲戚 亲家 街坊 伙计 师傅 师父 朋友 客气 学生 大夫 大爷
闺女 东西 时候 地方 事情 消息 名字 衣服 衣裳 窗户 行李 家伙 意思 故事 关系 学问 规矩 本事 头发
眼睛 耳朵 嘴巴 脑袋 眉毛 胳膊 指甲 指头 舌头 屁股 尾巴 骨头 石头 木头 馒头 枕头 码头 跟头 月亮
太阳 云彩 风筝 灯笼 喇叭 琵琶 葫芦 萝卜 葡萄 核桃 芝麻 豆腐 蘑菇 棉花 粮食 庄稼 甘蔗 漂亮 舒服
喜欢 认识 清楚 明白 聪明 糊涂 结实 暖和 凉快 热闹 痛快 快活 便宜 利索 麻烦 别扭 老实 厉害 马虎
精神 体面 大方 小气 实在 踏实 稳当 扎实 含糊 模糊 新鲜 苗条 机灵 勤快 商量 打听 打扮 打算 打量
告诉 收拾 嘱咐 招呼 折腾 琢磨 张罗 应酬 答应 称呼 休息 讲究 委屈 耽误 照顾 溜达 嘀咕 念叨 吓唬
哆嗦 咳嗽 什么 怎么 这么 那么 多么 多少 部分 生意 买卖 力气 脾气 福气 运气 志气 名堂 工夫 功夫
口袋 包袱 铺盖 扫帚 笤帚 簸箕 钥匙 篱笆 栅栏 哑巴 下巴 狐狸 骆驼 苍蝇 蚂蚱 刺猬 畜生 牲口 兄弟
爱人 丫头 冤家 对头 念头 甜头 上头 里头 前头 后头 胡同 字号 合同 招牌 动静 动弹 出息 打发 菩萨
和尚 道士 秀才 状元 财主 裁缝 木匠 铁匠 石匠 算盘 算计
""".split())
# misaki 0.9.4's copy of the list against upstream's: three words more, six fewer.
_MISAKI_EXTRA = frozenset("别人 将军 戏弄".split())
_MISAKI_MISSING = frozenset("不在 学生 情形 打点 老太 老头".split())

# Words that keep a full tone where the rules above would make them neutral (upstream's list).
NOT_NEUTRAL_WORDS = frozenset("""
男子 女子 分子 原子 量子 莲子 石子 瓜子 电子 人人 虎虎 幺幺 干嘛 学子 哈哈 数数 袅袅 局地 以下 娃哈哈
花花草草 留得 耕地 想想 熙熙 攘攘 卵子 死死 冉冉 恳恳 佼佼 吵吵 打打 考考 整整 莘莘 落地 算子 家家户户 青青
""".split())


def load_neutral_words() -> frozenset[str]:
    """Upstream's neutral-tone words, from the misaki package where it is installed; else ours."""
    try:
        from misaki.tone_sandhi import ToneSandhi as MisakiSandhi  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return NEUTRAL_WORDS
    words = set(MisakiSandhi().must_neural_tone_words)
    return frozenset((words - _MISAKI_EXTRA) | _MISAKI_MISSING)


PARTICLES = "吧呢哈啊呐噻嘛吖嗨哦哒额滴哩哟喽啰耶喔诶"
PUNCTUATION = "：，；。？！“”‘’':,;.?!"


def tone(final: str) -> str:
    return final[-1:] if final[-1:].isdigit() else ""


def set_tone(finals: list[str], i: int, t: str) -> None:
    if tone(finals[i]):  # punctuation and syllables without a reading are left alone
        finals[i] = finals[i][:-1] + t


def all_third(finals: list[str]) -> bool:
    return all(tone(f) == "3" for f in finals)


class ToneSandhi:
    """Stateless apart from the jieba tokenizer used to split words into two parts."""

    def __init__(self, cut_for_search: Callable[[str], list[str]]):
        self.cut_for_search = cut_for_search
        self.neutral_words = load_neutral_words()

    # -- per-word rules ------------------------------------------------------------------------
    def split_word(self, word: str) -> list[str]:
        """Two parts: the shortest jieba search-mode sub-word and the rest (upstream's way)."""
        first = sorted(self.cut_for_search(word), key=len)[0]
        if word.find(first) == 0:
            return [first, word[len(first):]]
        return [word[: -len(first)], first]

    def bu(self, word: str, finals: list[str]) -> None:
        if len(word) == 3 and word[1] == "不":  # 看不懂
            set_tone(finals, 1, "5")
            return
        for i, ch in enumerate(word[:-1]):
            if ch == "不" and tone(finals[i + 1]) == "4":  # 不怕
                set_tone(finals, i, "2")

    def yi(self, word: str, finals: list[str]) -> None:
        if "一" in word and all(c.isnumeric() for c in word if c != "一"):
            return  # a number: 一零零
        if len(word) == 3 and word[1] == "一" and word[0] == word[2]:
            set_tone(finals, 1, "5")  # 看一看
        elif word.startswith("第一"):
            set_tone(finals, 1, "1")
        else:
            for i, ch in enumerate(word[:-1]):
                if ch != "一":
                    continue
                if tone(finals[i + 1]) == "4":
                    set_tone(finals, i, "2")  # 一段
                elif word[i + 1] not in PUNCTUATION:
                    set_tone(finals, i, "4")  # 一天

    def neutral(self, word: str, pos: str, finals: list[str]) -> None:
        for j in range(1, len(word)):  # reduplicated nouns/verbs/adjectives: 奶奶, 试试
            if word[j] == word[j - 1] and pos[:1] in ("n", "v", "a") and word not in NOT_NEUTRAL_WORDS:
                set_tone(finals, j, "5")
        ge = word.find("个")
        last = len(word) - 1
        if word[-1] in PARTICLES or word[-1] in "的地得":
            set_tone(finals, last, "5")
        elif len(word) == 1 and word in "了着过" and pos in ("ul", "uz", "ug"):
            set_tone(finals, last, "5")
        elif len(word) > 1 and word[-1] in "们子" and pos in ("r", "n") and word not in NOT_NEUTRAL_WORDS:
            set_tone(finals, last, "5")
        elif len(word) > 1 and word[-1] in "上下里" and pos in ("s", "l", "f"):
            set_tone(finals, last, "5")  # 桌上, 家里
        elif len(word) > 1 and word[-1] in "来去" and word[-2] in "上下进出回过起开":
            set_tone(finals, last, "5")  # 上来, 出去
        elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in "几有两半多各整每做是")) or word == "个":
            set_tone(finals, ge, "5")
        elif word in self.neutral_words or word[-2:] in self.neutral_words:
            set_tone(finals, last, "5")
        parts = self.split_word(word)
        end = len(parts[0])
        for part, stop in ((parts[0], end), (parts[1], len(word))):
            if part and (part in self.neutral_words or part[-2:] in self.neutral_words):
                set_tone(finals, stop - 1, "5")

    def third(self, word: str, finals: list[str]) -> None:
        if len(word) == 2 and all_third(finals):
            set_tone(finals, 0, "2")
        elif len(word) == 3:
            first, _ = self.split_word(word)
            n = len(first)
            if all_third(finals):
                if n == 2:  # 蒙古/包
                    set_tone(finals, 0, "2")
                    set_tone(finals, 1, "2")
                elif n == 1:  # 纸/老虎
                    set_tone(finals, 1, "2")
                return
            head, tail = finals[:n], finals[n:]
            if len(head) == 2 and all_third(head):  # 所有/人
                set_tone(finals, 0, "2")
            if len(tail) == 2 and all_third(tail):
                set_tone(finals, n, "2")
            elif tail and not all_third(tail) and tone(tail[0]) == "3" and tone(head[-1]) == "3":
                set_tone(finals, n - 1, "2")  # 好/喜欢
        elif len(word) == 4:  # idioms: two 2-syllable halves
            for start in (0, 2):
                if all_third(finals[start:start + 2]):
                    set_tone(finals, start, "2")

    def modify(self, word: str, pos: str, finals: list[str]) -> list[str]:
        finals = list(finals)
        self.bu(word, finals)
        self.yi(word, finals)
        self.neutral(word, pos, finals)
        self.third(word, finals)
        return finals

    # -- merging jieba words before the rules ------------------------------------------------
    def pre_merge(self, seg: list[tuple[str, str]]) -> list[tuple[str, str]]:
        seg = _merge_bu(seg)
        seg = _merge_yi(seg)
        seg = _merge_same(seg)
        seg = _merge_third(seg, lambda a, b: all_third(a) and all_third(b))
        seg = _merge_third(seg, lambda a, b: tone(a[-1]) == "3" and tone(b[0]) == "3")
        return _merge_er(seg)


def _merge_bu(seg):
    out, prev = [], ""
    for word, pos in seg:
        if prev == "不":
            word = prev + word
        if word != "不":
            out.append((word, pos))
        prev = word
    if prev == "不":
        out.append(("不", "d"))
    return out


def _merge_yi(seg):
    out: list[list[str]] = []
    i = 0
    while i < len(seg):  # A 一 A (verbs) -> one word
        word, pos = seg[i]
        if 0 < i < len(seg) - 1 and word == "一":
            left = out[-1] if out else list(seg[i - 1])
            right = seg[i + 1]
            if left[0] == right[0] and left[1] == "v" and right[1] == "v":
                out[-1] = [left[0] + "一" + right[0], left[1]]
                i += 2
                continue
        out.append([word, pos])
        i += 1
    merged: list[list[str]] = []
    for word, pos in out:  # a lone 一 joins the next word
        if merged and merged[-1][0] == "一":
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return [tuple(x) for x in merged]


def _merge_same(seg):
    out: list[list[str]] = []
    for word, pos in seg:
        if out and word == out[-1][0]:
            out[-1][0] += word
        else:
            out.append([word, pos])
    return [tuple(x) for x in out]


def _finals(word: str) -> list[str]:
    return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)


def _merge_third(seg, both_third):
    finals = [_finals(w) for w, _ in seg]
    out: list[list[str]] = []
    merged_prev = False
    for i, (word, pos) in enumerate(seg):
        prev = seg[i - 1][0] if i else ""
        can = bool(i > 0 and not merged_prev and finals[i - 1] and finals[i] and both_third(finals[i - 1], finals[i])
                   and not (len(prev) == 2 and prev[0] == prev[1]) and len(prev) + len(word) <= 3)
        if can:
            out[-1][0] += word
        else:
            out.append([word, pos])
        merged_prev = can
    return [tuple(x) for x in out]


def _merge_er(seg):
    out: list[list[str]] = []
    for i, (word, pos) in enumerate(seg):
        if i > 0 and word == "儿" and seg[i - 1][0] != "#":
            out[-1][0] += word
        else:
            out.append([word, pos])
    return [tuple(x) for x in out]
