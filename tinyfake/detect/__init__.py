"""Video- and image-level detection with a trained run: `tinyfake detect`.

Frames are sampled (every k-th, or N evenly spaced: `media`), every face is
found with OpenCV's Haar cascades and tracked across frames by IoU
(`tracking.Tracker`), each face is scored by the run's int8 model
(`scoring`: tinyfake's compiled C on the host, TFLite Micro, the simulator
or a board), and the file gets a verdict by the rule in
`tracking.aggregate`: file score = mean of the top-k face scores, fake when
>= 0.5. `detect.detect_file` does one file; `command` is the CLI.
"""
