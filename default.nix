# nixpkgs-python: every set in sets/ for every locked Python.
#
#   nix-build -A pytest.python          the set's interpreter environment (newest Python)
#   nix-build -A pytest.py312.python    the same for Python 3.12
#   nix-build -A pytest.packages.pytest one package
#   nix-build -A bot                    the bot (bin/nixpkgs-python; nix/bot.nix), not a set
#
# pkgs: the nixpkgs to build with (its python3XY, stdenv, fetchurl, autoPatchelfHook).  By
# default the nixpkgs pinned in nix/nixpkgs.json: what the nightly builds and the binary cache
# serves.  `nixpkgs` (what `import` takes: a path, an absolute string as from --argstr nixpkgs
# ~/src/nixpkgs, a store path from fetchTarball, a flake input) or `pkgs` selects another one,
# whose outputs the binary cache does not have.  pkgs = null builds with a standalone
# interpreter from `interpreters` (by default nix/local.json, written by
# `python -m bot.model.interpreters`): outputs for this machine only.
# The pin and `nixpkgs` are imported with `config = { }; overlays = [ ];`: nothing of this
# machine's nixpkgs configuration (~/.config/nixpkgs, NIXPKGS_* variables) changes the sets.
# system: the system to build for (passed to the pinned nixpkgs or `nixpkgs`); given with a
# `pkgs` too, it must be that nixpkgs' system (one error otherwise: pkgs would win silently).
# overrides: self: super: { foo = super.foo.overridePythonAttrs (old: { ... }); }, applied to
# every set after the shared library (overrides/) and the set's sets/<name>/overrides.nix (in
# a set without `foo`, what it gives for `foo` is left out; a name no set has is an error), or
# { <set> = self: super: { ... }; } for some sets only (README "Overrides").
# disabledOverrides: entries of the shared library to leave out, "<package>#<n>" (n: the entry's
# 1-based position in overrides/packages/<package>.toml), a list or a comma-separated string
# (--argstr); the bot uses it to check whether an entry is still needed.
# setsDir, overridesDir, interpretersFile: paths, absolute strings or store paths
# (builtins.path, a flake input).
{ system ? builtins.currentSystem
, nixpkgs ? null
, pkgs ? (if nixpkgs != null then import ((import ./nix/lib.nix).importable "`nixpkgs`" nixpkgs) { inherit system; config = { }; overlays = [ ]; }
          else import ./nix/nixpkgs.nix { inherit system; })
, overrides ? (self: super: { })
, interpretersFile ? ./nix/local.json
, interpreters ? (
    let file = (import ./nix/lib.nix).toPath interpretersFile; in
    if builtins.pathExists file then (builtins.fromJSON (builtins.readFile file)).interpreters else { })
, setsDir ? ./sets
, overridesDir ? ./overrides
, disabledOverrides ? [ ]
}@args:
let
  # `system` chooses the nixpkgs imported here: with a `pkgs` of another system given, one error
  systemChecked =
    if args ? pkgs && pkgs != null && args ? system
    then (import ./nix/lib.nix).pkgsSystem "default.nix" pkgs system
    else null;
  sets = (import ./nix/sets.nix).all { inherit setsDir overridesDir pkgs interpreters overrides disabledOverrides; };
in
builtins.seq systemChecked (
if sets ? bot then throw "nixpkgs-python: a set may not be named 'bot' (${toString setsDir}/bot): `bot` is the bot's attribute; rename the set"
else sets // {
  # nix-env -qaP -f . lists, and nix-build without -A builds, every set's environment for
  # each of its Pythons (`<set>.python`, `<set>.py3XY.python`: nix/set.nix) and the bot
  recurseForDerivations = true;
  # the bot (`nix-build -A bot && ./result/bin/nixpkgs-python sets`), built by nix/bot.nix from
  # this repository's source and its own set sets/bot-runtime (whatever setsDir says), with
  # this repository's overrides and the same pkgs/interpreters as the sets
  bot = import ./nix/bot.nix { inherit pkgs interpreters; src = ./.; };
})
