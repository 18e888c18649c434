"""Mandarin tone sandhi on pypinyin finals, following the rules of upstream ``tone_sandhi.py``
(PaddleSpeech's ToneSandhi), written anew.

Finals are strings such as ``"ao3"``; tone 5 is neutral. Per jieba word, in this order:
不 (bu2 before a 4th tone, neutral inside A不B), 一 (yi2 before a 4th tone, yi4 before others,
neutral in A一A, yi1 in 第一 and in numbers), neutral tone (reduplications, particles, 们/子
suffixes, directional complements, 个 as classifier, a list of words read with a neutral
syllable), then third-tone sandhi (3-3 -> 2-3 within 2-, 3- and 4-syllable words). Before that,
words are merged (不/一 with the next word, A一A, reduplications, adjacent all-third-tone
words, 儿) so that the rules see the units they need.

Difference: the neutral-tone and not-neutral word lists are our own (common words read with a
neutral last syllable in standard Mandarin), not upstream's; words outside them keep the tone
pypinyin gives.
"""

from __future__ import annotations

from collections.abc import Callable

from pypinyin import Style, lazy_pinyin

# Words whose last syllable is neutral (their last two characters also count inside longer words).
NEUTRAL_WORDS = frozenset("""
爸爸 妈妈 哥哥 姐姐 弟弟 妹妹 爷爷 奶奶 姥姥 姥爷 叔叔 伯伯 舅舅 婶婶 姑姑 宝宝 娃娃 星星 谢谢 太太
先生 丈夫 媳妇 女婿 姑娘 小姐 少爷 老爷 亲戚 亲家 街坊 伙计 师傅 师父 朋友 客气 学生 大夫 大爷 闺女
东西 时候 地方 事情 消息 名字 衣服 衣裳 被子 窗户 行李 家伙 玩意 意思 故事 道理 关系 学问 规矩 本事
头发 眼睛 耳朵 鼻子 嘴巴 脑袋 眉毛 胳膊 指甲 指头 舌头 屁股 尾巴 骨头 石头 木头 馒头 枕头 码头 跟头
月亮 太阳 云彩 风筝 灯笼 喇叭 琵琶 葫芦 萝卜 葡萄 核桃 芝麻 豆腐 蘑菇 棉花 粮食 庄稼 甘蔗 柿子 橘子
漂亮 舒服 喜欢 认识 清楚 明白 聪明 糊涂 结实 暖和 凉快 热闹 痛快 快活 便宜 干净 利索 麻烦 别扭 老实
厉害 马虎 精神 体面 大方 小气 和气 客人 实在 踏实 稳当 扎实 含糊 模糊 新鲜 苗条 机灵 伶俐 勤快
商量 打听 打扮 打算 打量 告诉 收拾 吩咐 嘱咐 招呼 折腾 琢磨 张罗 应酬 答应 称呼 认得 晓得 记得
觉得 懂得 舍得 值得 休息 喜鹊 讲究 委屈 耽误 关照 照顾 指望 溜达 嘀咕 唠叨 念叨 吓唬 哆嗦 咳嗽
什么 怎么 这么 那么 多么 为了 除了 罢了 算了 多少 部分 生意 买卖 力气 脾气 福气 运气 志气 名堂
工夫 功夫 口袋 皮袋 包袱 铺盖 扫帚 笤帚 簸箕 笊篱 钥匙 刷子 篱笆 栅栏 房子 桌子 椅子 凳子 杯子
盘子 筷子 勺子 刀子 剪子 镜子 梳子 帽子 裤子 袜子 鞋子 袖子 领子 扣子 本子 票子 日子 样子 法子
孩子 儿子 孙子 妻子 嫂子 婶子 小子 胖子 瘦子 傻子 疯子 骗子 厨子 驼子 瞎子 聋子 哑巴 结巴 下巴
狐狸 骆驼 苍蝇 蚂蚱 刺猬 畜生 牲口 兄弟 姐妹 爱人 丫头 冤家 对头 念头 苦头 甜头 上头 下头 里头
外头 前头 后头 外边 里边 上边 下边 前边 后边 这边 那边 东边 西边 南边 北边 旁边 左边 右边
胡同 字号 合同 招牌 动静 动弹 出息 打发 菩萨 和尚 道士 秀才 状元 财主 裁缝 木匠 铁匠 石匠 算盘 算计
""".split())

# Words that keep a full tone where the rules above would make them neutral.
NOT_NEUTRAL_WORDS = frozenset("""
男子 女子 孔子 孟子 老子 庄子 君子 才子 学子 游子 赤子 弟子 天子 太子 王子 公子 父子 母子
电子 原子 分子 中子 质子 粒子 量子 光子 离子 因子 算子 卵子 精子 种子 莲子 瓜子 棋子 石子 松子
人人 个个 天天 年年 家家 处处 事事 时时 刚刚 常常 渐渐 悄悄 慢慢 好好 早早 哈哈 嘻嘻 呵呵 冉冉
""".split())

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
        elif word in NEUTRAL_WORDS or word[-2:] in NEUTRAL_WORDS:
            set_tone(finals, last, "5")
        parts = self.split_word(word)
        end = len(parts[0])
        for part, stop in ((parts[0], end), (parts[1], len(word))):
            if part and (part in NEUTRAL_WORDS or part[-2:] in NEUTRAL_WORDS):
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
