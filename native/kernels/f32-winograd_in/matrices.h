/* The matrices of Winograd's F(2x2, 3x3) (points 0, 1, -1, infinity) and F(4x4, 3x3) (points 0, 1,
 * -1, 1/2, -2, infinity: half the fp32 error of Lavin and Gray's 0, +-1, +-2 at 512 channels, as
 * Barabasz et al. found), from the Toom-Cook construction; output = A^T [(G g G^T) (.) (B^T d B)] A.
 * One source for the kernels (templates/winograd.h), their references and the weight transform
 * (ops/winograd.c). B^T and A^T hold halves, quarters and eighths: exact in float. */
#ifndef SL_WINOGRAD_MATRICES_H
#define SL_WINOGRAD_MATRICES_H

static const double sl_wino_bt2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const double sl_wino_g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double sl_wino_at2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

static const double sl_wino_bt4[6][6] = {{1, -1.5, -2, 1.5, 1, 0},  {0, -1, 0.5, 2.5, 1, 0},   {0, 1, -2.5, 0.5, 1, 0},
                                         {0, -2, -1, 2, 1, 0},      {0, 0.5, -1, -0.5, 1, 0}, {0, 1, -1.5, -2, 1.5, 1}};
static const double sl_wino_g4[6][3] = {{1, 0, 0},
                                        {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                        {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                        {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                        {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                        {0, 0, 1}};
static const double sl_wino_at4[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5, -2, 0}, {0, 1, 1, 0.25, 4, 0}, {0, 1, -1, 0.125, -8, 1}};

#endif
