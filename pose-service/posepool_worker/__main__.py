"""``python -m posepool_worker``: the worker's entry point. Stdlib only until bootstrap's import guard."""

from posepool_worker.bootstrap import main

if __name__ == "__main__":
    main()
