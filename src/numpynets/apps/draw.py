"""The digit-recognizer window: ``numpynets draw [MODEL]``.

Draw a digit with the mouse on a 280x280 black canvas; the ten
probabilities update while you draw (at most every 50 ms) and when you let
go, the most likely digit highlighted; beside the canvas is the 28x28 image
the model actually receives, enlarged. Clear (button, ``c``, Escape), undo
the last stroke (button, Ctrl+Z), save the drawing as a PNG (Ctrl+S), open
another model (Ctrl+O) or pick one of the recent runs' models.

Only the widgets live here. What is drawn and its antialiased picture are
in :mod:`.drawing`; the model, the preprocessing and the prediction are in
:mod:`.recognizer`. Both are plain Python, tested without a display.

On screen, a new stroke segment is first drawn as a plain Tk line (Tk does
not antialias on X11), and at every update the canvas shows the
antialiased picture instead: the same pixels the model's input is made from.
Tk is imported here only, inside functions, so the rest of numpynets works
on machines without it.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ..errors import NumpynetsError
from .drawing import BRUSH, CANVAS, Drawing
from .recognizer import Recognizer, Throttle, default_model, describe_run_model, run_models

BAR_W, BAR_H = 160, 18           # one probability bar
VIEW = 140                       # the 28x28 model input, shown 5x
TOP, OTHER = "#4CAF50", "#2196F3"   # the original's green (most likely) and blue
UPDATE_SECONDS = 0.05            # live updates at most this often while drawing
MODEL_TYPES = [("numpynets models", "*.safetensors"), ("original Rust models", "*.bin"), ("all files", "*")]


def import_tk():
    """The tkinter module, or a one-line error saying how to get it."""
    try:
        import tkinter
        import tkinter.filedialog  # noqa: F401
        import tkinter.messagebox  # noqa: F401
        import tkinter.ttk  # noqa: F401
    except ImportError:
        raise NumpynetsError("numpynets draw needs tkinter (Python's Tk bindings): install python3-tk "
                             "(Debian/Ubuntu), python-tk (Homebrew) or use a Python built with Tk") from None
    return tkinter


def make_root(screen: str | None = None):
    """A Tk root window on ``screen`` (default: $DISPLAY), or a one-line
    error when there is no display to open."""
    tk = import_tk()
    try:
        return tk.Tk(screenName=screen, className="numpynets")
    except tk.TclError as exc:
        raise NumpynetsError(f"no display: numpynets draw needs a desktop (set DISPLAY); Tk said: {exc}") from None


def photo_data(image) -> bytes:
    """A Pillow image as PPM/PGM bytes, which Tk's photo image reads natively
    (no Pillow-Tk glue needed)."""
    buf = io.BytesIO()
    image.save(buf, format="PPM")
    return buf.getvalue()


class DrawApp:
    """The window's widgets, wired to a :class:`Drawing` and a :class:`Recognizer`."""

    def __init__(self, root, recognizer: Recognizer, runs_root="runs", brush: float = BRUSH,
                 interval: float = UPDATE_SECONDS):
        self.tk = import_tk()
        self.root = root
        self.recognizer = recognizer
        self.runs_root = runs_root
        self.drawing = Drawing(CANVAS, brush)
        self.throttle = Throttle(interval)
        self.prediction = None
        self.updates = 0                 # how many times the picture and bars were refreshed
        self._pending = None             # Tk "after" id of a scheduled update
        self._build()
        self._bind_keys()
        self.update_now()

    # -- layout --------------------------------------------------------------

    def _build(self) -> None:
        tk, ttk = self.tk, self.tk.ttk
        root = self.root
        root.title(self._title())
        root.resizable(False, False)
        root.protocol("WM_DELETE_WINDOW", root.destroy)
        self._build_menu()

        main = ttk.Frame(root, padding=10)
        main.grid(row=0, column=0, sticky="nsew")

        # left: the canvas; its background is the antialiased picture
        self.heading = ttk.Label(main, text=self._heading(), font=("TkDefaultFont", 12, "bold"),
                                 wraplength=CANVAS)
        self.heading.grid(row=0, column=0, sticky="w")
        self.canvas = tk.Canvas(main, width=CANVAS, height=CANVAS, bg="black", highlightthickness=0,
                                borderwidth=0, cursor="crosshair")
        self.canvas.grid(row=1, column=0, rowspan=2, sticky="n")
        self._picture = tk.PhotoImage(master=root, width=CANVAS, height=CANVAS)
        self.canvas.create_image(0, 0, anchor="nw", image=self._picture)
        for seq, fn in (("<ButtonPress-1>", self.on_press), ("<B1-Motion>", self.on_motion),
                        ("<ButtonRelease-1>", self.on_release)):
            self.canvas.bind(seq, fn)

        # middle: what the model receives, and its answer
        mid = ttk.Frame(main, padding=(14, 0))
        mid.grid(row=1, column=1, sticky="n")
        ttk.Label(mid, text="Model input (28×28)").grid(row=0, column=0)
        self._view = tk.PhotoImage(master=root, width=VIEW, height=VIEW)
        tk.Label(mid, image=self._view, borderwidth=1, relief="solid", bg="black").grid(row=1, column=0, pady=4)
        self.answer = ttk.Label(mid, text="?", font=("TkDefaultFont", 44, "bold"), foreground=TOP)
        self.answer.grid(row=2, column=0, pady=(6, 0))
        self.answer_note = ttk.Label(mid, text=self._prompt())
        self.answer_note.grid(row=3, column=0)

        # right: ten bars
        right = ttk.Frame(main)
        right.grid(row=1, column=2, sticky="n")
        ttk.Label(right, text="Probabilities", font=("TkDefaultFont", 11, "bold")).grid(
            row=0, column=0, columnspan=3, sticky="w", pady=(0, 4))
        self.bars = []
        for d in range(10):
            digit = ttk.Label(right, text=self._bar_label(d), width=self._bar_width())
            digit.grid(row=d + 1, column=0, sticky="e", padx=(0, 4))
            bar = tk.Canvas(right, width=BAR_W, height=BAR_H, bg="white", highlightthickness=1,
                            highlightbackground="#cccccc", borderwidth=0)
            bar.grid(row=d + 1, column=1, pady=2)
            rect = bar.create_rectangle(0, 0, 0, BAR_H, fill=OTHER, width=0)
            pct = ttk.Label(right, text="", width=6, anchor="e")
            pct.grid(row=d + 1, column=2, sticky="e", padx=(4, 0))
            self.bars.append((bar, rect, pct, digit))

        # buttons and status
        buttons = ttk.Frame(main, padding=(0, 10, 0, 0))
        buttons.grid(row=3, column=0, columnspan=3, sticky="w")
        for i, (text, fn) in enumerate((("Clear", self.clear), ("Undo", self.undo),
                                        ("Save PNG…", self.save_dialog), ("Open model…", self.open_model_dialog))):
            ttk.Button(buttons, text=text, command=fn).grid(row=0, column=i, padx=(0, 6))
        recent = ttk.Menubutton(buttons, text="Recent models")
        self.recent_menu = self._recent_menu(recent)
        recent.configure(menu=self.recent_menu)
        recent.grid(row=0, column=4)
        self.status = ttk.Label(main, text="", foreground="#555555")
        self.status.grid(row=4, column=0, columnspan=3, sticky="w", pady=(6, 0))
        ttk.Label(main, text="c / Esc: clear    Ctrl+Z: undo    Ctrl+S: save    Ctrl+O: open model",
                  foreground="#888888").grid(row=5, column=0, columnspan=3, sticky="w")
        self._show_model()

    def _build_menu(self) -> None:
        tk = self.tk
        bar = tk.Menu(self.root)
        file = tk.Menu(bar, tearoff=0)
        file.add_command(label="Open model…", accelerator="Ctrl+O", command=self.open_model_dialog)
        file.add_cascade(label="Recent models", menu=self._recent_menu(file))
        file.add_command(label="Save drawing as PNG…", accelerator="Ctrl+S", command=self.save_dialog)
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=self.root.destroy)
        edit = tk.Menu(bar, tearoff=0)
        edit.add_command(label="Undo stroke", accelerator="Ctrl+Z", command=self.undo)
        edit.add_command(label="Clear", accelerator="C / Esc", command=self.clear)
        bar.add_cascade(label="File", menu=file)
        bar.add_cascade(label="Edit", menu=edit)
        self.root.configure(menu=bar)

    def _recent_menu(self, parent):
        menu = self.tk.Menu(parent, tearoff=0)
        menu.configure(postcommand=lambda: self._fill_recent(menu))
        return menu

    def _fill_recent(self, menu) -> None:
        """Filled each time the menu opens: runs finish while the window is up."""
        menu.delete(0, "end")
        models = run_models(self.runs_root)[:15]
        if not models:
            menu.add_command(label=f"no runs in {self.runs_root}/ yet: numpynets train mlp", state="disabled")
        current = self.recognizer.path.resolve() if self.recognizer.path else None
        for path in models:
            mark = "● " if current is not None and path.resolve() == current else "   "
            menu.add_command(label=mark + describe_run_model(path), command=lambda p=path: self.open_model(p))

    def _bind_keys(self) -> None:
        r = self.root
        for seq in ("<Key-c>", "<Key-C>", "<Escape>"):
            r.bind(seq, lambda e: self.clear())
        for seq, fn in (("<Control-z>", self.undo), ("<Control-Z>", self.undo), ("<Control-s>", self.save_dialog),
                        ("<Control-o>", self.open_model_dialog), ("<Control-q>", r.destroy)):
            r.bind(seq, lambda e, fn=fn: fn())

    # -- drawing -------------------------------------------------------------

    def on_press(self, event) -> None:
        x, y = self.drawing.begin(event.x, event.y)
        r = self.drawing.brush / 2
        self.canvas.create_oval(x - r, y - r, x + r, y + r, fill="white", outline="", tags="live")
        self.request_update()

    def on_motion(self, event) -> None:
        seg = self.drawing.extend(event.x, event.y)
        if seg is None:
            return
        (px, py), (qx, qy) = seg
        self.canvas.create_line(px, py, qx, qy, fill="white", width=self.drawing.brush,
                                capstyle="round", joinstyle="round", tags="live")
        self.request_update()

    def on_release(self, event) -> None:
        if self.drawing.drawing_stroke:
            self.on_motion(event)
            self.drawing.end()
        self.update_now()

    def clear(self) -> None:
        self.drawing.clear()
        self.update_now()

    def undo(self) -> None:
        if self.drawing.undo():
            self.update_now()

    # -- updating ------------------------------------------------------------

    def request_update(self) -> None:
        """Update now if the last update is old enough, else once, later."""
        wait = self.throttle.wait()
        if wait <= 0:
            self.update_now()
        elif self._pending is None:
            self._pending = self.root.after(max(1, math.ceil(wait * 1000)), self.update_now)

    def update_now(self) -> None:
        """Show the antialiased picture, predict, show the bars and the input."""
        if self._pending is not None:
            self.root.after_cancel(self._pending)
            self._pending = None
        self.throttle.mark()
        self._picture.configure(data=photo_data(self.drawing.image()), format="PPM")
        self.canvas.delete("live")
        self.prediction = self.recognizer.predict(self.drawing.array())
        self._show_prediction(self.prediction)
        self.updates += 1

    # -- class names (the model's data set: digits, or e.g. "T-shirt/top") --------

    def _title(self) -> str:
        r = self.recognizer
        return "numpynets: draw a digit" if r.digits else f"numpynets: draw ({r.dataset_title}: {', '.join(r.class_names)})"

    def _heading(self) -> str:
        r = self.recognizer
        return "Draw a digit (0-9)" if r.digits else f"Draw a {r.dataset_title} image"

    def _prompt(self) -> str:
        return "draw a digit" if self.recognizer.digits else "draw something"

    def _bar_label(self, d: int) -> str:
        return str(d) if self.recognizer.digits else self.recognizer.label(d)

    def _bar_width(self) -> int:
        return 2 if self.recognizer.digits else max(len(n) for n in self.recognizer.class_names)

    def _relabel(self) -> None:
        """After switching models: the title, heading and bar names of the new one's data set."""
        self.root.title(self._title())
        self.heading.configure(text=self._heading())
        for d, (_, _, _, label) in enumerate(self.bars):
            label.configure(text=self._bar_label(d), width=self._bar_width())

    def _show_prediction(self, pred) -> None:
        from PIL import Image

        probs = pred.probabilities if pred is not None else np.zeros(10)
        top = pred.digit if pred is not None else None
        for d, (bar, rect, pct, digit) in enumerate(self.bars):
            bar.coords(rect, 0, 0, round(float(probs[d]) * BAR_W), BAR_H)
            bar.itemconfigure(rect, fill=TOP if d == top else OTHER)
            pct.configure(text=f"{100 * probs[d]:.1f}%" if pred is not None else "")
            digit.configure(font=("TkDefaultFont", 10, "bold" if d == top else "normal"),
                            foreground=TOP if d == top else "")
        if pred is None:
            self.answer.configure(text="?", font=("TkDefaultFont", 44, "bold"))
            self.answer_note.configure(text=self._prompt())
            view = Image.new("L", (VIEW, VIEW), 0)
        else:
            text = self._bar_label(pred.digit)
            self.answer.configure(text=text, font=("TkDefaultFont", 44 if len(text) <= 2 else 18, "bold"))
            self.answer_note.configure(text=f"{100 * pred.confidence:.1f}% sure")
            x8 = (np.clip(pred.x, 0, 1) * 255 + 0.5).astype(np.uint8)            # (28, 28)
            view = Image.fromarray(x8).resize((VIEW, VIEW), Image.NEAREST)
        self._view.configure(data=photo_data(view), format="PPM")

    # -- files ---------------------------------------------------------------

    def _show_model(self, note: str = "") -> None:
        self.status.configure(text=f"model {self.recognizer.name}" + (f"    {note}" if note else ""))

    def open_model(self, path) -> bool:
        """Switch to the model in ``path``; on failure keep the current one
        and show why. Returns whether it switched."""
        try:
            self.set_model(path)
        except NumpynetsError as exc:
            self.tk.messagebox.showerror("Cannot use this model", str(exc), parent=self.root)
            return False
        return True

    def set_model(self, path) -> None:
        """Switch model (raises NumpynetsError, keeping the current one, if
        ``path`` is not a digit model) and predict the drawing again."""
        self.recognizer = Recognizer.load(path)
        self._relabel()
        self._show_model()
        self.update_now()

    def open_model_dialog(self) -> None:
        from pathlib import Path

        start = Path(self.runs_root) if Path(self.runs_root).is_dir() else Path.cwd()
        path = self.tk.filedialog.askopenfilename(parent=self.root, title="Open a model file",
                                                  initialdir=str(start), filetypes=MODEL_TYPES)
        if path:
            self.open_model(path)

    def save_dialog(self) -> None:
        if self.drawing.empty:
            self.tk.messagebox.showinfo("Nothing to save", "Draw a digit first.", parent=self.root)
            return
        path = self.tk.filedialog.asksaveasfilename(parent=self.root, title="Save the drawing",
                                                    defaultextension=".png", initialfile="digit.png",
                                                    filetypes=[("PNG image", "*.png")])
        if path:
            try:
                self.drawing.save_png(path)
            except (OSError, ValueError) as exc:
                self.tk.messagebox.showerror("Cannot save", f"{path}: {exc}", parent=self.root)
                return
            self._show_model(f"saved {path}")


def main(model_path=None, runs_root="runs", brush: float = BRUSH, screen: str | None = None) -> int:
    """``numpynets draw``: load the model (the newest run's by default),
    open the window, run until it is closed."""
    import_tk()
    recognizer = Recognizer.load(model_path if model_path else default_model(runs_root))
    root = make_root(screen)
    DrawApp(root, recognizer, runs_root=runs_root, brush=brush)
    root.mainloop()
    return 0
