"""Build hook: refuse to build a wheel without Swagger UI and ReDoc, which would serve a blank /docs."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

VENDOR = Path(__file__).resolve().parent / "inventory" / "static" / "vendor"
# What /docs and /redoc load, and the licence and notice files both licences
# (Apache-2.0, MIT) require in every copy.
DOCS_ASSETS = (
    "swagger-ui/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui-standalone-preset.js",
    "swagger-ui/swagger-ui.css",
    "swagger-ui/LICENSE",
    "swagger-ui/NOTICE",
    "redoc/redoc.standalone.js",
    "redoc/LICENSE",
)


class BuildPyWithDocsAssets(build_py):
    def run(self):
        missing = [name for name in DOCS_ASSETS if not (VENDOR / name).is_file()]
        # An editable install serves the files from the checkout, where `make` puts them.
        if missing and not self.editable_mode:
            raise SystemExit(
                f"inventory/static/vendor lacks {', '.join(missing)}: run `make vendor` first "
                "(it fetches Swagger UI and ReDoc from npm); a wheel without them serves a blank /docs"
            )
        super().run()


setup(cmdclass={"build_py": BuildPyWithDocsAssets})
