import torch

from warmstart.objectives.autoencoder import (
    Decoder,
    apply_corruption,
    corrupt,
    draw_corruption,
    reconstruction_loss,
)


def test_decoder_maps_features_to_the_image_shape():
    for size, channels in ((28, 1), (32, 3), (64, 1)):
        assert Decoder(48, channels, size)(torch.randn(3, 48)).shape == (3, channels, size, size)


def test_corrupt_is_seeded_and_masks_the_requested_fraction():
    x = torch.ones(64, 1, 32, 32)
    a = corrupt(x, 0.0, 0.25, torch.Generator().manual_seed(1))
    b = corrupt(x, 0.0, 0.25, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert abs(float((a == 0).float().mean()) - 0.25) < 0.03
    noisy = corrupt(x, 0.5, 0.0, torch.Generator().manual_seed(2))
    assert abs(float((noisy - x).std()) - 0.5) < 0.02


def test_decoder_learns_to_reconstruct():
    torch.manual_seed(0)
    images = torch.rand(16, 1, 16, 16)
    features = images.flatten(1)
    dec = Decoder(256, 1, 16, width=32)
    opt = torch.optim.Adam(dec.parameters(), 1e-2)
    first = float(reconstruction_loss(dec(features), images).detach())
    for _ in range(100):
        opt.zero_grad()
        loss = reconstruction_loss(dec(features), images)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_corruption_is_drawn_on_the_host_and_applied_where_the_images_are():
    """The host half holds the noise and a mask per 4x4 patch; applying it is `corrupt` with the same seed."""
    x = torch.rand(3, 1, 18, 18)
    drawn = draw_corruption(tuple(x.shape), 0.5, 0.5, torch.Generator().manual_seed(4))
    assert drawn["keep"].shape == (3, 1, 5, 5) and set(drawn["keep"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(apply_corruption(x, drawn), corrupt(x, 0.5, 0.5, torch.Generator().manual_seed(4)))
    assert "keep" not in draw_corruption(tuple(x.shape), 0.5, 0.0, torch.Generator().manual_seed(4))
