# Small helpers the library needs without nixpkgs' lib (standalone mode has no nixpkgs).
rec {
  # The fixed point of f: f (fix f).
  fix = f: let x = f x; in x;

  # Layer an overlay `self: super: { ... }` over a function `self: { ... }`.
  extends = overlay: f: self: let super = f self; in super // overlay self super;

  # Compose a list of overlays into one, applied left to right.
  composeOverlays = overlays: self: super:
    builtins.foldl'
      (acc: overlay: acc // overlay self (super // acc))
      { }
      overlays;

  filterAttrs = pred: attrs:
    builtins.listToAttrs (builtins.concatMap
      (name: if pred name attrs.${name} then [{ inherit name; value = attrs.${name}; }] else [ ])
      (builtins.attrNames attrs));

  # "3.12" -> "312"
  versionTag = version: builtins.replaceStrings [ "." ] [ "" ] version;

  # Is `version` within [from, until)?  Bounds are optional; PEP 440 order (compareVersions
  # would put "2.0rc1" after "2.0").
  inRange = { from ? null, until ? null, ... }: version:
    (from == null || comparePep440 version from >= 0)
    && (until == null || comparePep440 version until < 0);

  toInt = s: builtins.fromJSON (builtins.head (builtins.match "0*([0-9]+)" s));

  # A PEP 440 version as a list of integers that compares like the version: epoch, release
  # (padded), pre-release phase and number, post-release, dev-release.  Local labels are ignored.
  pep440Key = version:
    let
      v = builtins.head (builtins.match "[vV]?([^+]*).*" (builtins.replaceStrings
        [ "A" "B" "C" "D" "E" "I" "L" "O" "P" "R" "S" "T" "V" "W" ]
        [ "a" "b" "c" "d" "e" "i" "l" "o" "p" "r" "s" "t" "v" "w" ] version));
      epochM = builtins.match "([0-9]+)!(.*)" v;
      epoch = if epochM == null then 0 else toInt (builtins.head epochM);
      rest = if epochM == null then v else builtins.elemAt epochM 1;
      relM = builtins.match "([0-9]+(\\.[0-9]+)*)(.*)" rest;
      release = if relM == null then throw "nixpkgs-python: '${version}' is not a PEP 440 version"
        else map toInt (builtins.filter builtins.isString (builtins.split "\\." (builtins.head relM)));
      padded = release ++ builtins.genList (_: 0) (8 - builtins.length release);
      s0 = if relM == null then "" else builtins.elemAt relM 2;
      preM = builtins.match "[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?([0-9]*)(.*)" s0;
      phase = p: { a = 0; alpha = 0; b = 1; beta = 1; c = 2; rc = 2; pre = 2; preview = 2; }.${p};
      num = n: if n == "" then 0 else toInt n;
      s1 = if preM == null then s0 else builtins.elemAt preM 2;
      postM = let m = builtins.match "[-_.]?(post|rev|r)[-_.]?([0-9]*)(.*)" s1; in
        if m != null then [ (num (builtins.elemAt m 1)) (builtins.elemAt m 2) ]
        else let m2 = builtins.match "-([0-9]+)(.*)" s1; in
          if m2 != null then [ (toInt (builtins.head m2)) (builtins.elemAt m2 1) ] else null;
      s2 = if postM == null then s1 else builtins.elemAt postM 1;
      devM = builtins.match "[-_.]?dev[-_.]?([0-9]*)" s2;
      preKey =
        if preM != null then [ (phase (builtins.head preM)) (num (builtins.elemAt preM 1)) ]
        else if postM == null && devM != null then [ (-1) 0 ]
        else [ 3 0 ];
    in
    [ epoch ] ++ padded ++ preKey
    ++ [ (if postM == null then -1 else builtins.head postM) ]
    ++ [ (if devM == null then 9223372036854775807 else num (builtins.head devM)) ];

  compareLists = a: b:
    if a == [ ] && b == [ ] then 0
    else if a == [ ] then -1
    else if b == [ ] then 1
    else if builtins.head a < builtins.head b then -1
    else if builtins.head a > builtins.head b then 1
    else compareLists (builtins.tail a) (builtins.tail b);

  # -1, 0 or 1, like builtins.compareVersions but in PEP 440 order.
  comparePep440 = a: b: compareLists (pep440Key a) (pep440Key b);

  # The sets of `import ./default.nix { ... }` alone: without the bot and the
  # recurseForDerivations flag (the flake's packages and the overlay's pythonSets).
  setsOf = all: builtins.removeAttrs all [ "bot" "recurseForDerivations" ];

  # A file or directory given as a path, an absolute string, or a store path (a string with
  # its context, or an attribute set with `outPath`: builtins.path, fetchTarball, a flake
  # input, a derivation) -> what `+ "/name"`, readDir, readFile, pathExists and import take.
  # A path or a context-free string becomes a path (copied to the store where a derivation
  # uses it); a store path stays the string it is, with its context (Nix refuses to append
  # one to a path, and the context is what makes it a dependency).
  toPath = p:
    if builtins.isPath p then p
    else
      let
        s =
          if builtins.isString p then p
          else if builtins.isAttrs p && p ? outPath then toString p
          else throw "nixpkgs-python: a ${builtins.typeOf p} was given where a file or directory is expected; give a path, an absolute string or a store path";
      in
      if builtins.hasContext s then s
      else if builtins.substring 0 1 s != "/" then throw "nixpkgs-python: '${s}' is not an absolute path; give an absolute string (\"$PWD/${s}\"), a path (./${s}) or a store path"
      else /. + s;

  # `p` as `import p` takes it (a path, an absolute string, a store path with or without its
  # context, an attribute set with `outPath` such as a flake input), or one error naming it
  # as `what` when it is a relative string, which `import` would not find.
  importable = what: p:
    if builtins.isString p && !(builtins.hasContext p) && builtins.substring 0 1 p != "/"
    then throw "nixpkgs-python: ${what} ('${p}') is not an absolute path; give an absolute string (\"$PWD/${p}\"), a path (./${p}), or a store path (fetchTarball, builtins.path, a flake input)"
    else p;

  # The system `pkgs` (a nixpkgs) is for, and `given` (a `system` also passed, or null) must be
  # the same: `system` only chooses the system a nixpkgs is imported for, and a `pkgs` for
  # another system would silently win.  `where` names the function, for the error.
  pkgsSystem = where: pkgs: given:
    let s = pkgs.stdenv.hostPlatform.system or pkgs.system; in
    if given == null || given == s then s
    else throw "nixpkgs-python: ${where} was given `pkgs` for ${s} and `system = \"${given}\"`, which disagree; leave out one of them, or give a `pkgs` for ${given} (e.g. import <nixpkgs> { system = \"${given}\"; }): `system` only chooses the system the nixpkgs it imports itself is for";

  # Names reachable from `roots` through `edges name` (a list of names), roots included.
  closureNames = edges: roots:
    map (x: x.key) (builtins.genericClosure {
      startSet = map (key: { inherit key; }) roots;
      operator = x: map (key: { inherit key; }) (edges x.key);
    });

  unique = list: builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ] list;
}
