"""Shared fixtures: devices (CUDA cases skip without a GPU) and small mixtures."""

import pytest
import torch

DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
])]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)
