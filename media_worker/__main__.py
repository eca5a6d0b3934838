"""`python -m media_worker`: run the media worker in the foreground."""

from media_worker.worker import main

if __name__ == "__main__":
    main()
