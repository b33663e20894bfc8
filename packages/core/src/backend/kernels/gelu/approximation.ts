/** The coefficients of Eigen's float erf (generic_fast_erf_float), for the SIMD and the JavaScript GELU: odd over even polynomial on [-4, 4]. */
export const ERF_P = [-1.60960333262415e-2, -2.95459980854025e-3, -7.34990630326855e-4, -5.69250639462346e-5, -2.10102402082508e-6, 2.77068142495902e-8, -2.72614225801306e-10] as const;
export const ERF_Q = [-1.42647390514189e-2, -7.37332916720468e-3, -1.68282697438203e-3, -2.13374055278905e-4, -1.45660718464996e-5] as const;

/** 1 / sqrt(2 pi): phi(x) = exp(-x^2 / 2) / sqrt(2 pi), in both GELU derivatives. */
export const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
