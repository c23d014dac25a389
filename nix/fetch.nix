# Fetching a locked artifact at build time, checked against its locked sha256.
{
  # `artifact` is lock.artifactFor's record.  With nixpkgs, pkgs.fetchurl; without, Nix's own
  # <nix/fetchurl.nix> (builtin:fetchurl), which needs nothing else.  The store name is the
  # file name, so a hash mismatch names the package and version.  An artifact with `src` is
  # already at hand (the bot's sdist, made from this repository: nix/bot.nix): used as is.
  fetchArtifact = pkgs: artifact:
    if artifact ? src then artifact.src
    else if pkgs != null
    then pkgs.fetchurl { inherit (artifact) url sha256; name = artifact.name; }
    else import <nix/fetchurl.nix> { inherit (artifact) url sha256; name = artifact.name; };
}
