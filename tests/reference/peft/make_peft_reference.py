#!/usr/bin/env python3
"""Writes a reference LoRA adapter the way PEFT 0.14's save_pretrained does, without PEFT or safetensors installed.

A tiny fp32 model (2 blocks of h = h + v_proj(silu(q_proj(h))), q_proj with bias, dim 16) gets a LoRA adapter
(r=4, lora_alpha=8, target_modules q_proj/v_proj) with non-zero A and B (as after training). Outputs:
  tiny_base.safetensors        base weights by module path (layers.N.q_proj.weight ...)
  adapter/adapter_config.json  json.dumps(LoraConfig.to_dict(), indent=2, sort_keys=True), inference_mode true
  adapter/adapter_model.safetensors  keys base_model.model.<path>.lora_A.weight (r, in) / lora_B.weight (out, r),
                               metadata {"format": "pt"}, laid out as the safetensors library lays files out
  expected.safetensors         x (2, 3, 16), y_base, y_lora computed with torch (dropout off, eval mode)
Run: /usr/bin/python3 make_peft_reference.py (torch 1.13, numpy); the outputs are checked in.
"""
import json
import os
import struct

import numpy as np
import torch

DIM, R, ALPHA, LAYERS = 16, 4, 8, 2
TARGETS = ["q_proj", "v_proj"]
HERE = os.path.dirname(os.path.abspath(__file__))


def save_safetensors(path, tensors, metadata=None):
    """The safetensors layout: 8-byte LE header length, compact JSON header (__metadata__ first, then tensors in
    data order: dtype alignment descending, then name), padded with spaces to 8 bytes, then the raw data."""
    names = sorted(tensors)  # all F32 here, so the order is by name
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset, blobs = 0, []
    for n in names:
        a = np.ascontiguousarray(tensors[n].detach().numpy().astype("<f4"))
        b = a.tobytes()
        header[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def lora_config_dict():
    """PEFT 0.14.0 LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=[...]).to_dict() at save time."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "tiny-stack", "bias": "none",
        "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None, "layers_to_transform": None,
        "loftq_config": {}, "lora_alpha": ALPHA, "lora_bias": False, "lora_dropout": 0.05, "megatron_config": None,
        "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA", "r": R, "rank_pattern": {},
        "revision": None, "target_modules": sorted(TARGETS), "task_type": "CAUSAL_LM", "use_dora": False,
        "use_rslora": False,
    }


def main():
    g = torch.Generator().manual_seed(1234)
    base, adapter = {}, {}
    for i in range(LAYERS):
        for name in TARGETS:
            path = f"layers.{i}.{name}"
            base[path + ".weight"] = torch.randn(DIM, DIM, generator=g) / DIM ** 0.5
            if name == "q_proj":
                base[path + ".bias"] = torch.randn(DIM, generator=g) * 0.1
            adapter[f"base_model.model.{path}.lora_A.weight"] = torch.randn(R, DIM, generator=g) * 0.2
            adapter[f"base_model.model.{path}.lora_B.weight"] = torch.randn(DIM, R, generator=g) * 0.2
    x = torch.randn(2, 3, DIM, generator=g)

    def forward(with_lora):
        h = x
        for i in range(LAYERS):
            def lin(name, v):
                p = f"layers.{i}.{name}"
                y = torch.nn.functional.linear(v, base[p + ".weight"], base.get(p + ".bias"))
                if with_lora:
                    a = adapter[f"base_model.model.{p}.lora_A.weight"]
                    b = adapter[f"base_model.model.{p}.lora_B.weight"]
                    y = y + (v @ a.T @ b.T) * (ALPHA / R)
                return y
            h = h + lin("v_proj", torch.nn.functional.silu(lin("q_proj", h)))
        return h

    os.makedirs(os.path.join(HERE, "adapter"), exist_ok=True)
    save_safetensors(os.path.join(HERE, "tiny_base.safetensors"), base)
    save_safetensors(os.path.join(HERE, "adapter", "adapter_model.safetensors"), adapter, {"format": "pt"})
    with open(os.path.join(HERE, "adapter", "adapter_config.json"), "w") as f:
        f.write(json.dumps(lora_config_dict(), indent=2, sort_keys=True))
    save_safetensors(os.path.join(HERE, "expected.safetensors"),
                     {"x": x, "y_base": forward(False), "y_lora": forward(True)})


if __name__ == "__main__":
    main()
