"""posepool's Python pose worker: one process, one model, JSON-RPC 2.0 over stdio (see protocol/README.md).

Run as ``python -m posepool_worker --model NAME --device auto|cpu|cuda|cuda:N --threads N`` from pose-service/.
Importing this package imports nothing heavy (the bootstrap in __main__ guards numpy/cv2/torch).
"""
