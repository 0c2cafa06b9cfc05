"""diffnotes: the support package of *The information dynamics of generative diffusion*.

Every public name is listed in ``__all__``; each chapter has one home module:

=============================================  ===================================
chapter                                        home module
=============================================  ===================================
1  Twenty Questions                            :mod:`diffnotes.twenty_questions`
2  Diffusion models and the score              :mod:`diffnotes.denoising`
3  Generative information transfer             :mod:`diffnotes.information`
4  Fixed-point branching, symmetry breaking    :mod:`diffnotes.fixed_points`
5  Lyapunov spectra and expected divergence    :mod:`diffnotes.lyapunov`
6  Fisher information geometry                 :mod:`diffnotes.fisher`
7  Pathwise entropy and speciation             :mod:`diffnotes.speciation`
8  Entropic time                               :mod:`diffnotes.schedules`
=============================================  ===================================

The core every chapter uses: :mod:`diffnotes.processes` (forward processes),
:mod:`diffnotes.mixtures` (data with exact closed forms), :mod:`diffnotes.samplers`,
:mod:`diffnotes.checks` (Monte Carlo and sympy checks), :mod:`diffnotes.plotting`,
:mod:`diffnotes.device` (the device rule and seeded generators).
"""

from .checks import MCEstimate, Tally, check_close, check_identity, check_mc, mc_estimate
from .denoising import (
    DSMTerms,
    dsm_constant_terms,
    dsm_residuals,
    gaussian_dsm_constant,
    posterior_mean_importance,
    posterior_variance_term,
)
from .device import CHECK_DTYPE, default_device, generator
from .fisher import (
    check_fisher_definition,
    entropy_production_shares,
    entropy_rate_fisher,
    entropy_rate_jacobian,
    estimate_dimension,
    fisher_information,
    gaussian_fisher_spectrum,
    normalized_fisher_spectrum,
    posterior_score,
    posterior_score_autograd,
    posterior_score_samples,
    sample_posterior,
)
from .fixed_points import (
    FixedPointPaths,
    FixedPoints,
    branching_times,
    find_fixed_points,
    follow_fixed_points,
)
from .information import (
    EntropyRateSamples,
    TinyDenoiser,
    coherence,
    conditional_entropy_path,
    dsm_factor,
    entropy_rate_finite_difference,
    entropy_rate_from_loss,
    entropy_rate_posterior,
    entropy_rate_samples,
    entropy_rate_score_norm,
    gaussian_entropy_rate,
    immse_factor,
    max_bandwidth,
    posterior_concentration,
    train_denoiser,
)
from .lyapunov import (
    DivergenceParts,
    divergence_parts,
    entropy_rate_divergence,
    flow_divergence,
    generative_exponents,
    hutchinson_divergence,
    hutchinson_variance,
    jacobian_vector_product,
    local_spectrum,
    score_jacobian_autograd,
    spectrum_along_trajectories,
    velocity_jacobian,
)
from .mixtures import GaussianMixture
from .plotting import PALETTE, error_band, figure, use_book_style
from .processes import EDM, VE, VP, ForwardProcess
from .samplers import probability_flow, reverse_sde, time_grid
from .schedules import (
    EntropyProfile,
    compare_schedules,
    edm_grid,
    entropic_grid,
    gaussian_profile,
    log_snr_grid,
    loss_profile,
    mixture_profile,
    noise_ratio,
    rescaled_entropic_grid,
    schedule_grid,
    uniform_grid,
)
from .speciation import (
    class_entropy,
    class_entropy_samples,
    effective_snr,
    mixture_gram,
    overlap_term_samples,
    reduced_class_entropy_samples,
    rescaled_mixture,
    speciation_time,
    top_covariance_eigenvalue,
    two_class_phi,
    variance_estimate,
)
from .twenty_questions import (
    Games,
    binary_entropy,
    bisection_questions,
    exact_entropy_trajectory,
    expected_information_gain,
    mask_tail,
    masked_entropy,
    play,
    random_questions,
)

__version__ = "0.1.0"

__all__ = [
    "CHECK_DTYPE",
    "DSMTerms",
    "DivergenceParts",
    "EDM",
    "EntropyRateSamples",
    "FixedPointPaths",
    "FixedPoints",
    "ForwardProcess",
    "Games",
    "GaussianMixture",
    "MCEstimate",
    "PALETTE",
    "TinyDenoiser",
    "VE",
    "VP",
    "binary_entropy",
    "bisection_questions",
    "branching_times",
    "Tally",
    "check_close",
    "check_identity",
    "check_mc",
    "class_entropy",
    "class_entropy_samples",
    "coherence",
    "conditional_entropy_path",
    "default_device",
    "divergence_parts",
    "dsm_constant_terms",
    "dsm_factor",
    "dsm_residuals",
    "effective_snr",
    "entropy_production_shares",
    "entropy_rate_divergence",
    "entropy_rate_finite_difference",
    "entropy_rate_fisher",
    "entropy_rate_from_loss",
    "entropy_rate_jacobian",
    "entropy_rate_posterior",
    "entropy_rate_samples",
    "entropy_rate_score_norm",
    "error_band",
    "estimate_dimension",
    "exact_entropy_trajectory",
    "expected_information_gain",
    "figure",
    "find_fixed_points",
    "fisher_information",
    "check_fisher_definition",
    "posterior_score",
    "posterior_score_autograd",
    "flow_divergence",
    "follow_fixed_points",
    "gaussian_dsm_constant",
    "gaussian_entropy_rate",
    "gaussian_fisher_spectrum",
    "generative_exponents",
    "generator",
    "hutchinson_divergence",
    "hutchinson_variance",
    "immse_factor",
    "jacobian_vector_product",
    "local_spectrum",
    "mask_tail",
    "masked_entropy",
    "max_bandwidth",
    "mc_estimate",
    "mixture_gram",
    "normalized_fisher_spectrum",
    "overlap_term_samples",
    "play",
    "posterior_concentration",
    "posterior_mean_importance",
    "posterior_score_samples",
    "posterior_variance_term",
    "probability_flow",
    "random_questions",
    "reduced_class_entropy_samples",
    "rescaled_mixture",
    "reverse_sde",
    "sample_posterior",
    "score_jacobian_autograd",
    "speciation_time",
    "spectrum_along_trajectories",
    "time_grid",
    "top_covariance_eigenvalue",
    "train_denoiser",
    "two_class_phi",
    "use_book_style",
    "variance_estimate",
    "velocity_jacobian",
    "EntropyProfile",
    "compare_schedules",
    "edm_grid",
    "entropic_grid",
    "gaussian_profile",
    "log_snr_grid",
    "loss_profile",
    "mixture_profile",
    "noise_ratio",
    "rescaled_entropic_grid",
    "schedule_grid",
    "uniform_grid",
]
