# nixpkgs-python: every set in sets/ for every locked Python.
#
#   nix-build -A pytest.python          the set's interpreter environment (newest Python)
#   nix-build -A pytest.py312.python    the same for Python 3.12
#   nix-build -A pytest.packages.pytest one package
#
# pkgs: nixpkgs (its python3XY, stdenv, fetchurl, autoPatchelfHook), by default <nixpkgs>
# when it is on NIX_PATH (or the pinned one of nix/nixpkgs.json with --arg pinnedNixpkgs true,
# as CI and the binary cache use); null uses a standalone interpreter from `interpreters` (by
# default nix/local.json, written by `python -m bot.interpreters`).
# overrides: self: super: { foo = super.foo.overridePythonAttrs (old: { ... }); }, applied to
# every set after the shared library (overrides/) and the set's sets/<name>/overrides.nix.
# disabledOverrides: entries of the shared library to leave out, "<package>#<n>" (n: the entry's
# 1-based position in overrides/packages/<package>.toml), a list or a comma-separated string
# (--argstr); the bot uses it to check whether an entry is still needed.
let
  nixpkgsOnPath = builtins.any
    (e: e.prefix == "nixpkgs" || (e.prefix == "" && builtins.pathExists (e.path + "/nixpkgs")))
    builtins.nixPath;
in
{ pinnedNixpkgs ? false          # true: build with the nixpkgs pinned in nix/nixpkgs.json
, pkgs ? (if pinnedNixpkgs then import ./nix/nixpkgs.nix { }
          else if nixpkgsOnPath then import <nixpkgs> { } else null)
, overrides ? (self: super: { })
, interpretersFile ? ./nix/local.json
, interpreters ? (
    let file = (import ./nix/lib.nix).toPath interpretersFile; in
    if builtins.pathExists file then (builtins.fromJSON (builtins.readFile file)).interpreters else { })
, setsDir ? ./sets
, overridesDir ? ./overrides
, disabledOverrides ? [ ]
}:
(import ./nix/sets.nix).all { inherit setsDir overridesDir pkgs interpreters overrides disabledOverrides; }
