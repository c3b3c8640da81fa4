# Generates ncf_values.csv: noncentral F tail probabilities to 20 significant
# digits with mpmath at 40 decimal digits, summing the Poisson mixture of
# regularized incomplete beta functions until the Poisson mass left is below
# 1e-35. Independent of the Go code (different arithmetic and library); run
# with: python3 gen_ncf_values.py > ncf_values.csv
import mpmath as mp

mp.mp.dps = 40

def tails(d1, d2, lam, x):
    a, b = mp.mpf(d1) / 2, mp.mpf(d2) / 2
    y = d1 * x / (d1 * x + d2)
    z = d2 / (d1 * x + d2)
    mu = mp.mpf(lam) / 2
    lo = up = mp.mpf(0)
    mass = mp.mpf(0)
    j = 0
    while True:
        w = mp.exp(-mu + j * mp.log(mu) - mp.loggamma(j + 1)) if mu > 0 else mp.mpf(j == 0)
        lo += w * mp.betainc(a + j, b, 0, y, regularized=True)
        up += w * mp.betainc(b, a + j, 0, z, regularized=True)
        mass += w
        j += 1
        if j > mu and 1 - mass < mp.mpf('1e-35'):
            break
    return lo, up

cases = [
    # d1, d2, lambda, x
    (1, 284, 6.75, '3.8744102193014035454'),
    (3, 40, 12.116357604398448, '2.8387453980206427056'),
    (3, 39, 11.852958526041961, '2.8450678052793498311'),
    (1, 10, 0, 2), (2, 7.5, 0, 0.3), (5, 3, 0, 40),
    (1, 20, 0.5, 1), (1, 20, 0.5, 12), (2, 15, 3, 0.2), (2, 15, 3, 4),
    (3, 50, 10, 1), (3, 50, 10, 3), (3, 50, 10, 12), (4, 12.5, 25, 6),
    (2, 271.0055, 9.7, 3.03), (1, 5, 40, 0.5), (1, 5, 40, 60),
    (6, 100, 80, 2), (6, 100, 80, 25), (10, 30, 200, 5), (10, 30, 200, 40),
    (1, 1000, 500, 300), (1, 1000, 500, 700), (2, 2, 1, 0.01), (3, 400, 0.001, 2.6),
    (1, 30, 0.2, 25), (1, 30, 0.2, 400), (10, 30, 200, 0.5), (20, 500, 1000, 3),
]
print('d1,d2,lambda,x,cdf,survival')
for d1, d2, lam, x in cases:
    lo, up = tails(mp.mpf(d1), mp.mpf(d2), mp.mpf(lam), mp.mpf(x))
    print(','.join([str(d1), str(d2), str(lam), str(x), mp.nstr(lo, 20, min_fixed=-1, max_fixed=-1), mp.nstr(up, 20, min_fixed=-1, max_fixed=-1)]))
