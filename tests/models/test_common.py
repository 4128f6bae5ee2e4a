"""models/common.py: what a checkpoint's config says before any weight loads."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("family, settings, limit", [
    ("bert", {}, 512),
    ("bert", {"max_position_embeddings": 128}, 128),
    ("distilbert", {}, 512),
    ("electra", {}, 512),
    ("roberta", {"max_position_embeddings": 514, "pad_token_id": 1}, 512),  # positions start after the pad id
    ("xlm-roberta", {"max_position_embeddings": 514, "pad_token_id": 1}, 512),
    ("deberta-v2", {"position_biased_input": False}, None),  # relative positions only (DeBERTa-v3)
    ("deberta-v2", {"position_biased_input": True, "max_position_embeddings": 512}, 512),
    ("modernbert", {"max_position_embeddings": 8192}, 8192),
])
def test_position_limit_is_the_longest_input_the_embeddings_cover(family, settings, limit):
    from transformers import AutoConfig

    from warmstart.models.common import position_limit

    assert position_limit(AutoConfig.for_model(family, **settings)) == limit
