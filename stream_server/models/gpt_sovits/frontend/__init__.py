"""GPT-SoVITS v2 text frontend: text -> v2 phoneme ids (+ BERT features), nothing downloaded."""
