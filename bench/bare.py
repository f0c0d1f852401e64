"""The baseline: a bare Flask redirect, served by gunicorn with the same settings as Touchpoint."""
from flask import Flask, redirect

app = Flask(__name__)


@app.get("/r/<key>")
def follow(key: str):  # type: ignore[no-untyped-def]
    return redirect(f"https://shop.example/landing?tp_click={key}", 302)
