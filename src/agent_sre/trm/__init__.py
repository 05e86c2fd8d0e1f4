"""The Tiny Recursive Model: the paper's model (``model.py``, ``config.py``), the alert encoding,
data generation, the trainer and its recipe (``train.py``, ``recipe.py``), evaluation, export
(``checkpoint.py``, ``onnx.py``, ``artifact.py``) and the runtime that serves it (``infer.py``:
PyTorch or ONNX Runtime behind one predictor, one early-halting loop in ``halting.py``).

Importing this package imports no torch: the serving path (``infer``, ``onnx``, ``artifact``,
``halting``, ``encoding``) runs with ONNX Runtime alone; ``model``, ``train``, ``checkpoint`` and
``recipe`` need torch.
"""
