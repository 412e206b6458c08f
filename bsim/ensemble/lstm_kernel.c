/* The gradient of bsim.ensemble.lstm.batch_grads in C, for the CPU in float32 (bsim.ensemble.native
   compiles it on first use and falls back to the torch code without a compiler).

   The same model and loss: theta (K, P) in torch.nn.LSTM's layout (w_ih (4H, 1), w_hh (4H, H), b_ih,
   b_hh; gates i, f, g, o) then w_out (H), b_out; L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2.
   Forward per time step: a = x_t w_ih + b_ih + b_hh + h_{t-1} W_hh^T; i, f, o = sigmoid(a);
   g = tanh(a_g) = 2 sigmoid(2 a_g) - 1; c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
   Backward is back-propagation through time (Hochreiter & Schmidhuber 1997; Graves 2012, ch. 4),
   with d = dL/dc_t = dc + dh o (1 - tanh^2 c_t):
   da_i = d g i (1 - i), da_f = d c_{t-1} f (1 - f), da_g = d i (1 - g^2), da_o = dh tanh(c_t) o (1 - o),
   dc <- d f, dh <- da W_hh; dW_hh = sum_t da_t^T h_{t-1}, dw_ih = sum_t da_t x_t, db = sum_t da_t.

   Why: torch runs each of the dozen element-wise operations of a time step over all K chains,
   through memory; here one chain at a time keeps its activations (about 230 kB at H = 16, T = 16,
   B = 32) in cache, and the hidden size is fixed at compile time (-DBSIM_HIDDEN=H) so that the
   loops over gates and units unroll. Plain IEEE float arithmetic, no -ffast-math: the same binary
   gives the same bits. */
#include <stdint.h>
#include <string.h>

#define H BSIM_HIDDEN
#define G (4 * H)

/* e^x in float32 to about 1.3 ulp: Cody-Waite range reduction and Cephes' expf polynomial, written
   without branches or library calls so that the compiler vectorises the loops that call it. */
static inline float exp_f32(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + 12582912.0f;    /* 1.5 * 2^23: t's low bits hold round(x log2 e) */
    float n = t - 12582912.0f;
    int32_t tb;
    memcpy(&tb, &t, sizeof tb);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (tb - 0x4B400000 + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

static inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

/* floats of scratch that bsim_lstm_batch_grads needs for batches of B sequences of length T */
long bsim_lstm_work_floats(int B, int T) {
    return (long)T * B * G + 2L * T * B * H + (long)(T + 1) * B * H + (long)T * B * G + 3L * B * H + B + H * G + G;
}

/* the hidden size this library was compiled for */
int bsim_lstm_hidden(void) { return H; }

/* grad (K, P) of the K chains' batch losses; x (K, B, T), y (K, B); all contiguous float32 */
void bsim_lstm_batch_grads(int K, int B, int T, const float *restrict theta, const float *restrict x,
                           const float *restrict y, float *restrict grad, float *restrict work) {
    const long P = (long)G + (long)G * H + 2L * G + H + 1;
    float *restrict S = work;                     /* (T, B, G): i, f, g, o after their nonlinearity */
    float *restrict TC = S + (long)T * B * G;     /* (T, B, H): tanh c_t */
    float *restrict C = TC + (long)T * B * H;     /* (T, B, H): c_t */
    float *restrict Hs = C + (long)T * B * H;     /* (T + 1, B, H): h_{t-1} at t, h_T at T */
    float *restrict DA = Hs + (long)(T + 1) * B * H;   /* (T, B, G): dL/da_t */
    float *restrict dh = DA + (long)T * B * G, *restrict dc = dh + (long)B * H;
    float *restrict zero = dc + (long)B * H;       /* (B, H) zeros: c_{-1} */
    float *restrict dpred = zero + (long)B * H;        /* (B): dL/df */
    float *restrict WT = dpred + B;               /* (H, G): w_hh transposed */
    float *restrict bias = WT + H * G;            /* (G) */
    memset(zero, 0, sizeof(float) * B * H);
    for (int k = 0; k < K; k++) {
        const float *th = theta + k * P;
        const float *w_ih = th, *w_hh = th + G, *b_ih = w_hh + G * H, *b_hh = b_ih + G;
        const float *w_out = b_hh + G, b_out = w_out[H];
        const float *xk = x + (long)k * B * T, *yk = y + (long)k * B;
        float *gr = grad + k * P;
        float *g_w_ih = gr, *g_w_hh = gr + G, *g_b_ih = g_w_hh + G * H, *g_b_hh = g_b_ih + G;
        float *g_w_out = g_b_hh + G;
        for (int g = 0; g < G; g++) {
            bias[g] = b_ih[g] + b_hh[g];
            for (int j = 0; j < H; j++) WT[j * G + g] = w_hh[g * H + j];
        }
        memset(Hs, 0, sizeof(float) * B * H);
        /* forward: a = bias + x_t w_ih + h_{t-1} W_hh^T; i, f, o = sigmoid; g = tanh = 2 sigmoid(2 a) - 1 */
        for (int t = 0; t < T; t++) {
            const float *restrict cp = t ? C + (long)(t - 1) * B * H : zero;
            for (int b = 0; b < B; b++) {
                float a[G];
                const float *restrict hp = Hs + ((long)t * B + b) * H;
                const float xt = xk[b * T + t];
                for (int g = 0; g < G; g++) a[g] = bias[g] + xt * w_ih[g];
                for (int j = 0; j < H; j++) {
                    const float hj = hp[j];
                    for (int g = 0; g < G; g++) a[g] += hj * WT[j * G + g];
                }
                float *restrict s = S + ((long)t * B + b) * G;
                for (int g = 0; g < G; g++) {
                    const float two = (g >= 2 * H && g < 3 * H) ? 2.0f : 1.0f;
                    const float v = sigmoid_f32(two * a[g]);
                    s[g] = two * v - (two - 1.0f);
                }
                float *restrict c = C + ((long)t * B + b) * H, *restrict tc = TC + ((long)t * B + b) * H;
                float *restrict hn = Hs + ((long)(t + 1) * B + b) * H;
                const float *restrict cpb = cp + b * H;
                for (int j = 0; j < H; j++) {
                    const float cj = s[H + j] * cpb[j] + s[j] * s[2 * H + j];
                    c[j] = cj;
                    const float tj = 2.0f * sigmoid_f32(2.0f * cj) - 1.0f;
                    tc[j] = tj;
                    hn[j] = s[3 * H + j] * tj;
                }
            }
        }
        /* read-out: f = h_T . w_out + b_out; dL/df = (f - y) / B */
        const float *hT = Hs + (long)T * B * H;
        float g_b_out = 0.0f;
        for (int j = 0; j < H; j++) g_w_out[j] = 0.0f;
        for (int b = 0; b < B; b++) {
            float pred = b_out;
            for (int j = 0; j < H; j++) pred += hT[b * H + j] * w_out[j];
            dpred[b] = (pred - yk[b]) / (float)B;
            g_b_out += dpred[b];
            for (int j = 0; j < H; j++) g_w_out[j] += dpred[b] * hT[b * H + j];
        }
        gr[P - 1] = g_b_out;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++) { dh[b * H + j] = dpred[b] * w_out[j]; dc[b * H + j] = 0.0f; }
        /* backward through time */
        for (int t = T - 1; t >= 0; t--) {
            const float *restrict cp = t ? C + (long)(t - 1) * B * H : zero;
            float *restrict da_t = DA + (long)t * B * G;
            for (int b = 0; b < B; b++) {
                const float *restrict s = S + ((long)t * B + b) * G;
                const float *restrict tc = TC + ((long)t * B + b) * H;
                const float *restrict cpb = cp + b * H;
                float *restrict dhb = dh + b * H, *restrict dcb = dc + b * H, *restrict da = da_t + b * G;
                for (int j = 0; j < H; j++) {
                    const float i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j], tj = tc[j];
                    const float d = dcb[j] + dhb[j] * o * (1.0f - tj * tj);
                    da[j] = d * g * (i * (1.0f - i));
                    da[H + j] = d * cpb[j] * (f * (1.0f - f));
                    da[2 * H + j] = d * i * (1.0f - g * g);
                    da[3 * H + j] = dhb[j] * tj * (o * (1.0f - o));
                    dcb[j] = d * f;
                }
            }
            if (t) {   /* dh_{t-1} = da_t W_hh, four rows of the batch at a time */
                int b = 0;
                for (; b + 4 <= B; b += 4) {
                    float acc[4][H];
                    for (int r = 0; r < 4; r++) for (int j = 0; j < H; j++) acc[r][j] = 0.0f;
                    for (int g = 0; g < G; g++) {
                        const float *restrict wr = w_hh + g * H;
                        for (int r = 0; r < 4; r++) {
                            const float dg = da_t[(b + r) * G + g];
                            for (int j = 0; j < H; j++) acc[r][j] += dg * wr[j];
                        }
                    }
                    for (int r = 0; r < 4; r++) for (int j = 0; j < H; j++) dh[(b + r) * H + j] = acc[r][j];
                }
                for (; b < B; b++) {
                    float acc[H];
                    for (int j = 0; j < H; j++) acc[j] = 0.0f;
                    for (int g = 0; g < G; g++) for (int j = 0; j < H; j++) acc[j] += da_t[b * G + g] * w_hh[g * H + j];
                    for (int j = 0; j < H; j++) dh[b * H + j] = acc[j];
                }
            }
        }
        /* weight gradients: dW_hh^T = sum_{t,b} h_{t-1}^T da, dw_ih = sum x_t da, db = sum da */
        const long rows = (long)T * B;
        for (int j = 0; j < H; j += 2) {   /* two units at a time; an odd H's last pair is one unit twice */
            const int j1 = j + 1 < H ? j + 1 : j;
            float acc0[G], acc1[G];
            for (int g = 0; g < G; g++) { acc0[g] = 0.0f; acc1[g] = 0.0f; }
            for (long n = 0; n < rows; n++) {
                const float h0 = Hs[n * H + j], h1 = Hs[n * H + j1];
                const float *restrict da = DA + n * G;
                for (int g = 0; g < G; g++) { acc0[g] += h0 * da[g]; acc1[g] += h1 * da[g]; }
            }
            for (int g = 0; g < G; g++) { g_w_hh[g * H + j] = acc0[g]; g_w_hh[g * H + j1] = acc1[g]; }
        }
        {
            float ax[G], ab[G];
            for (int g = 0; g < G; g++) { ax[g] = 0.0f; ab[g] = 0.0f; }
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++) {
                    const float xt = xk[b * T + t];
                    const float *restrict da = DA + ((long)t * B + b) * G;
                    for (int g = 0; g < G; g++) { ax[g] += xt * da[g]; ab[g] += da[g]; }
                }
            for (int g = 0; g < G; g++) { g_w_ih[g] = ax[g]; g_b_ih[g] = ab[g]; g_b_hh[g] = ab[g]; }
        }
    }
}

/* floats of scratch that bsim_lstm_losses needs */
long bsim_lstm_loss_work_floats(void) { return (long)H * G + G; }

/* losses[k] = (1/2N) sum_n (f(x_n; theta_k) - y_n)^2 for every chain on one shared set x (N, T), y (N): the
   forward pass alone, one sequence at a time with its state in registers; the sum in double */
void bsim_lstm_losses(int K, int N, int T, const float *restrict theta, const float *restrict x,
                      const float *restrict y, double *restrict losses, float *restrict work) {
    const long P = (long)G + (long)G * H + 2L * G + H + 1;
    float *restrict WT = work;                    /* (H, G): w_hh transposed */
    float *restrict bias = WT + H * G;            /* (G) */
    for (int k = 0; k < K; k++) {
        const float *th = theta + k * P;
        const float *w_ih = th, *w_hh = th + G, *b_ih = w_hh + G * H, *b_hh = b_ih + G;
        const float *w_out = b_hh + G, b_out = w_out[H];
        for (int g = 0; g < G; g++) {
            bias[g] = b_ih[g] + b_hh[g];
            for (int j = 0; j < H; j++) WT[j * G + g] = w_hh[g * H + j];
        }
        double total = 0.0;
        for (int n = 0; n < N; n++) {
            float h[H], c[H];
            for (int j = 0; j < H; j++) { h[j] = 0.0f; c[j] = 0.0f; }
            for (int t = 0; t < T; t++) {
                float a[G], s[G];
                const float xt = x[(long)n * T + t];
                for (int g = 0; g < G; g++) a[g] = bias[g] + xt * w_ih[g];
                for (int j = 0; j < H; j++) {
                    const float hj = h[j];
                    for (int g = 0; g < G; g++) a[g] += hj * WT[j * G + g];
                }
                for (int g = 0; g < G; g++) {
                    const float two = (g >= 2 * H && g < 3 * H) ? 2.0f : 1.0f;
                    s[g] = two * sigmoid_f32(two * a[g]) - (two - 1.0f);
                }
                for (int j = 0; j < H; j++) {
                    c[j] = s[H + j] * c[j] + s[j] * s[2 * H + j];
                    h[j] = s[3 * H + j] * (2.0f * sigmoid_f32(2.0f * c[j]) - 1.0f);
                }
            }
            float pred = b_out;
            for (int j = 0; j < H; j++) pred += h[j] * w_out[j];
            const double d = (double)pred - (double)y[n];
            total += d * d;
        }
        losses[k] = 0.5 * total / N;
    }
}
