"""The seed's command: live handwritten digit recognition from the webcam, digits overlaid on the feed.

Same as `digitlens live` and takes the same arguments, e.g. `python digitrecognization.py --source demo`.
Press q or Esc to quit, space to pause, s to save a snapshot.
"""
import sys

from digitlens.video_cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
